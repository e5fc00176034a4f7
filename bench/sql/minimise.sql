-- Hand-written minimisation (bench/policies/minimise/minimise.yaml): names replaced by keyed
-- pseudonyms computed SERVER-SIDE (pgcrypto HMAC-SHA-256; the key is a bound parameter, which
-- `retention` must never do: this is a speed baseline only) and contact data cleared, for
-- patients not seen for 3 years, in ONE UPDATE. Parameters: %(today)s, %(key)s (hex).
-- Same clock as the policy: last non-cancelled stay (open = today) or consultation + 3 years;
-- no visit or an infinite date: kept.
-- The same work_mem as the engine's plan transaction (the server default is 4MB).
SET LOCAL work_mem = '64MB';

WITH visits AS (
    SELECT patient_id, coalesce(sortie::date, %(today)s::date) AS d
    FROM sejours WHERE annule = '0'
    UNION ALL
    SELECT c.patient_id, pc.date
    FROM consultations AS c JOIN plagesconsult AS pc USING (plageconsult_id)
    WHERE c.annule = '0'
), due AS (
    SELECT patient_id FROM visits GROUP BY patient_id
    HAVING NOT bool_or(NOT isfinite(d))
       AND (max(d) + interval '3 years')::date < %(today)s::date
)
UPDATE patients AS p SET
    nom = 'PSH-' || upper(substr(encode(hmac(convert_to(lower(btrim(p.nom)), 'UTF8'),
                                             decode(%(key)s, 'hex'), 'sha256'), 'hex'), 1, 20)),
    prenom = 'PSH-' || upper(substr(encode(hmac(convert_to(lower(btrim(p.prenom)), 'UTF8'),
                                                decode(%(key)s, 'hex'), 'sha256'), 'hex'), 1, 20)),
    nom_jeune_fille = 'PSH-' || upper(substr(encode(hmac(
        convert_to(lower(btrim(p.nom_jeune_fille)), 'UTF8'),
        decode(%(key)s, 'hex'), 'sha256'), 'hex'), 1, 20)),
    tel = NULL,
    tel_portable = NULL,
    email = NULL,
    adresse = NULL
FROM due
WHERE p.patient_id = due.patient_id;
