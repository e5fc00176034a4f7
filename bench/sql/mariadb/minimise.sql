-- Hand-written minimisation (bench/policies/minimise/minimise.yaml) on MariaDB: the same work
-- as bench/sql/minimise.sql. Names replaced by keyed pseudonyms computed SERVER-SIDE (HMAC-SHA-256
-- written out with SHA2, as MariaDB has no HMAC function: SHA2((K xor opad) || UNHEX(SHA2((K xor
-- ipad) || m))); the two padded keys are bound parameters, which `retention` must never do: this
-- is a speed baseline only) and contact data cleared, for patients not seen for 3 years, in ONE
-- UPDATE on ONE connection. Parameters: %(today)s, %(ikey)s and %(okey)s (hex, 64 bytes each).
-- Same clock as the policy: last non-cancelled stay (open = today) or consultation + 3 years;
-- no visit or an unreadable (zero) date: kept.
UPDATE patients AS p
JOIN (
    SELECT patient_id FROM (
        SELECT patient_id, COALESCE(DATE(sortie), CAST(%(today)s AS DATE)) AS d,
               (sortie IS NOT NULL AND (MONTH(sortie) = 0 OR DAY(sortie) = 0)) AS bad
        FROM sejours WHERE annule = '0'
        UNION ALL
        SELECT c.patient_id, pc.date, (MONTH(pc.date) = 0 OR DAY(pc.date) = 0)
        FROM consultations AS c JOIN plagesconsult AS pc ON pc.plageconsult_id = c.plageconsult_id
        WHERE c.annule = '0'
    ) AS visits
    GROUP BY patient_id
    HAVING NOT MAX(bad) AND MAX(d) + INTERVAL 3 YEAR < CAST(%(today)s AS DATE)
) AS due ON due.patient_id = p.patient_id
SET
    p.nom = CONCAT('PSH-', UPPER(SUBSTRING(SHA2(CONCAT(UNHEX(%(okey)s), UNHEX(SHA2(CONCAT(
        UNHEX(%(ikey)s), CONVERT(LOWER(TRIM(p.nom)) USING utf8mb4)), 256))), 256), 1, 20))),
    p.prenom = CONCAT('PSH-', UPPER(SUBSTRING(SHA2(CONCAT(UNHEX(%(okey)s), UNHEX(SHA2(CONCAT(
        UNHEX(%(ikey)s), CONVERT(LOWER(TRIM(p.prenom)) USING utf8mb4)), 256))), 256), 1, 20))),
    p.nom_jeune_fille = CONCAT('PSH-', UPPER(SUBSTRING(SHA2(CONCAT(UNHEX(%(okey)s), UNHEX(SHA2(
        CONCAT(UNHEX(%(ikey)s), CONVERT(LOWER(TRIM(p.nom_jeune_fille)) USING utf8mb4)), 256))),
        256), 1, 20))),
    p.tel = NULL,
    p.tel_portable = NULL,
    p.email = NULL,
    p.adresse = NULL;
