-- Hand-written purge of patients past CSP art. R1112-7 (policies/dossier-medical.yaml),
-- set-based, in ONE transaction (the runner wraps these statements in BEGIN ... COMMIT).
-- Parameter: %(today)s. Statements end with ';' at the end of a line.

-- The same work_mem as the engine's plan transaction (the server default is 4MB).
SET LOCAL work_mem = '64MB';

-- The stale set: 20 years after the last non-cancelled stay (an open stay counts as today) or
-- consultation; extended to the 28th birthday; 10 years after a death less than 10 years after
-- the last visit (overrides the birthday). Unreadable birth date, infinite dates or no visit: kept.
CREATE TEMPORARY TABLE stale ON COMMIT DROP AS
WITH visits AS (
    SELECT patient_id, coalesce(sortie::date, %(today)s::date) AS d
    FROM sejours WHERE annule = '0'
    UNION ALL
    SELECT c.patient_id, pc.date
    FROM consultations AS c JOIN plagesconsult AS pc USING (plageconsult_id)
    WHERE c.annule = '0'
), last_visit AS (
    SELECT patient_id, max(d) AS venue, bool_or(NOT isfinite(d)) AS bad
    FROM visits GROUP BY patient_id
), parsed AS (
    SELECT p.patient_id, l.venue, p.deces,
        CASE WHEN btrim(p.naissance) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
            CASE WHEN substr(btrim(p.naissance), 1, 4)::int BETWEEN 1 AND 9999
                  AND substr(btrim(p.naissance), 6, 2)::int BETWEEN 1 AND 12 THEN
                CASE WHEN substr(btrim(p.naissance), 9, 2)::int BETWEEN 1 AND extract(day FROM
                        make_date(substr(btrim(p.naissance), 1, 4)::int,
                                  substr(btrim(p.naissance), 6, 2)::int, 1)
                        + interval '1 month' - interval '1 day')::int
                THEN make_date(substr(btrim(p.naissance), 1, 4)::int,
                               substr(btrim(p.naissance), 6, 2)::int,
                               substr(btrim(p.naissance), 9, 2)::int)
                END
            END
        END AS naissance
    FROM patients AS p JOIN last_visit AS l USING (patient_id)
    WHERE NOT l.bad AND (p.deces IS NULL OR isfinite(p.deces))
)
SELECT patient_id FROM parsed
WHERE naissance IS NOT NULL
  AND CASE WHEN deces IS NOT NULL AND deces < venue + interval '10 years'
           THEN (deces + interval '10 years')::date
           ELSE greatest(venue + interval '20 years', naissance + interval '28 years')::date
      END < %(today)s::date;

CREATE TEMPORARY TABLE stale_sejours ON COMMIT DROP AS
SELECT s.sejour_id FROM sejours AS s JOIN stale USING (patient_id);

CREATE TEMPORARY TABLE stale_consultations ON COMMIT DROP AS
SELECT c.consultation_id FROM consultations AS c JOIN stale USING (patient_id);

-- every object a polymorphic row may hang off: (class, id)
CREATE TEMPORARY TABLE stale_objects ON COMMIT DROP AS
SELECT 'CPatient'::varchar(40) AS object_class, patient_id AS object_id FROM stale
UNION ALL SELECT 'CSejour', sejour_id FROM stale_sejours
UNION ALL SELECT 'CConsultation', consultation_id FROM stale_consultations;

CREATE TEMPORARY TABLE stale_prescriptions ON COMMIT DROP AS
SELECT p.prescription_id FROM prescriptions AS p JOIN stale_objects AS o USING (object_class, object_id)
WHERE o.object_class IN ('CSejour', 'CConsultation');

ANALYZE stale;
ANALYZE stale_sejours;
ANALYZE stale_consultations;
ANALYZE stale_objects;
ANALYZE stale_prescriptions;

-- children first
DELETE FROM prescription_lignes AS l USING stale_prescriptions AS s
WHERE l.prescription_id = s.prescription_id;

DELETE FROM prescriptions AS p USING stale_prescriptions AS s
WHERE p.prescription_id = s.prescription_id;

DELETE FROM fichiers AS f USING stale_objects AS o
WHERE f.object_class = o.object_class AND f.object_id = o.object_id;

DELETE FROM user_log AS u USING stale_objects AS o
WHERE u.object_class = o.object_class AND u.object_id = o.object_id;

DELETE FROM dossiers_medicaux AS d USING stale AS s
WHERE d.object_class = 'CPatient' AND d.object_id = s.patient_id;

DELETE FROM consultations AS c USING stale_consultations AS s
WHERE c.consultation_id = s.consultation_id;

DELETE FROM sejours AS t USING stale_sejours AS s WHERE t.sejour_id = s.sejour_id;

DELETE FROM allergies AS t USING stale AS s WHERE t.patient_id = s.patient_id;

DELETE FROM contacts_urgence AS t USING stale AS s WHERE t.patient_id = s.patient_id;

DELETE FROM ins_patients AS t USING stale AS s WHERE t.patient_id = s.patient_id;

DELETE FROM patients AS t USING stale AS s WHERE t.patient_id = s.patient_id;
