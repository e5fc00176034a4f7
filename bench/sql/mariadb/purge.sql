-- Hand-written purge of patients past CSP art. R1112-7 (policies/dossier-medical.yaml) on
-- MariaDB: the same work as bench/sql/purge.sql, set-based, in ONE transaction on ONE
-- connection (the runner wraps these statements in a transaction; READ COMMITTED, as the
-- tool's sessions). Parameter: %(today)s. Statements end with ';' at the end of a line.
-- MariaDB has no ANALYZE inside a transaction (it commits): the temporary tables get keys.
-- CREATE TEMPORARY TABLE does not end the transaction.

-- The stale set: 20 years after the last non-cancelled stay (an open stay counts as today) or
-- consultation; extended to the 28th birthday; 10 years after a death less than 10 years after
-- the last visit (overrides the birthday). Unreadable birth date, unreadable (zero) dates or no
-- visit: kept. A birth date is read as the policy's YYYY-MM-DD: the trimmed text of 10
-- characters, digits in place, a real day of the calendar (year 1-9999).
CREATE TEMPORARY TABLE stale (PRIMARY KEY (patient_id)) ENGINE=InnoDB AS
WITH visits AS (
    SELECT patient_id, COALESCE(DATE(sortie), CAST(%(today)s AS DATE)) AS d,
           (sortie IS NOT NULL AND (MONTH(sortie) = 0 OR DAY(sortie) = 0)) AS bad
    FROM sejours WHERE annule = '0'
    UNION ALL
    SELECT c.patient_id, pc.date, (MONTH(pc.date) = 0 OR DAY(pc.date) = 0)
    FROM consultations AS c JOIN plagesconsult AS pc ON pc.plageconsult_id = c.plageconsult_id
    WHERE c.annule = '0'
), last_visit AS (
    SELECT patient_id, MAX(d) AS venue, MAX(bad) AS bad FROM visits GROUP BY patient_id
), parsed AS (
    SELECT p.patient_id, l.venue, p.deces, TRIM(p.naissance) AS t
    FROM patients AS p JOIN last_visit AS l ON l.patient_id = p.patient_id
    WHERE NOT l.bad AND (p.deces IS NULL OR (MONTH(p.deces) <> 0 AND DAY(p.deces) <> 0))
), born AS (
    SELECT patient_id, venue, deces,
        CASE WHEN CHAR_LENGTH(t) = 10 AND t REGEXP '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                  AND CAST(SUBSTRING(t, 1, 4) AS SIGNED) BETWEEN 1 AND 9999
                  AND CAST(SUBSTRING(t, 6, 2) AS SIGNED) BETWEEN 1 AND 12
                  AND CAST(SUBSTRING(t, 9, 2) AS SIGNED) BETWEEN 1 AND DAY(LAST_DAY(
                      CAST(CONCAT(SUBSTRING(t, 1, 8), '01') AS DATE)))
             THEN CAST(t AS DATE) END AS naissance
    FROM parsed
)
SELECT patient_id FROM born
WHERE naissance IS NOT NULL
  AND CASE WHEN deces IS NOT NULL AND deces < venue + INTERVAL 10 YEAR
           THEN deces + INTERVAL 10 YEAR
           ELSE GREATEST(venue + INTERVAL 20 YEAR, naissance + INTERVAL 28 YEAR)
      END < CAST(%(today)s AS DATE);

CREATE TEMPORARY TABLE stale_sejours (PRIMARY KEY (sejour_id)) ENGINE=InnoDB AS
SELECT s.sejour_id FROM sejours AS s JOIN stale ON stale.patient_id = s.patient_id;

CREATE TEMPORARY TABLE stale_consultations (PRIMARY KEY (consultation_id)) ENGINE=InnoDB AS
SELECT c.consultation_id FROM consultations AS c JOIN stale ON stale.patient_id = c.patient_id;

-- every object a polymorphic row may hang off: (class, id)
CREATE TEMPORARY TABLE stale_objects (
    object_class VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    object_id INT UNSIGNED NOT NULL,
    PRIMARY KEY (object_class, object_id)
) ENGINE=InnoDB AS
SELECT 'CPatient' AS object_class, patient_id AS object_id FROM stale
UNION ALL SELECT 'CSejour', sejour_id FROM stale_sejours
UNION ALL SELECT 'CConsultation', consultation_id FROM stale_consultations;

CREATE TEMPORARY TABLE stale_prescriptions (PRIMARY KEY (prescription_id)) ENGINE=InnoDB AS
SELECT p.prescription_id FROM prescriptions AS p
JOIN stale_objects AS o ON o.object_class = p.object_class AND o.object_id = p.object_id
WHERE o.object_class IN ('CSejour', 'CConsultation');

-- children first
DELETE l FROM prescription_lignes AS l
JOIN stale_prescriptions AS s ON s.prescription_id = l.prescription_id;

DELETE p FROM prescriptions AS p
JOIN stale_prescriptions AS s ON s.prescription_id = p.prescription_id;

DELETE f FROM fichiers AS f
JOIN stale_objects AS o ON o.object_class = f.object_class AND o.object_id = f.object_id;

DELETE u FROM user_log AS u
JOIN stale_objects AS o ON o.object_class = u.object_class AND o.object_id = u.object_id;

DELETE d FROM dossiers_medicaux AS d
JOIN stale AS s ON d.object_class = 'CPatient' AND d.object_id = s.patient_id;

DELETE c FROM consultations AS c
JOIN stale_consultations AS s ON s.consultation_id = c.consultation_id;

DELETE t FROM sejours AS t JOIN stale_sejours AS s ON s.sejour_id = t.sejour_id;

DELETE t FROM allergies AS t JOIN stale AS s ON s.patient_id = t.patient_id;

DELETE t FROM contacts_urgence AS t JOIN stale AS s ON s.patient_id = t.patient_id;

DELETE t FROM ins_patients AS t JOIN stale AS s ON s.patient_id = t.patient_id;

DELETE t FROM patients AS t JOIN stale AS s ON s.patient_id = t.patient_id;
