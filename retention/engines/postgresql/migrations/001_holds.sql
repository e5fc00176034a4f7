-- Legal holds (R1112-7: a claim suspends the clock). Subject keys are stored as text.
CREATE TABLE IF NOT EXISTS {schema}.holds (
    hold_id      bigserial PRIMARY KEY,
    policy       text NOT NULL,
    subject_key  text NOT NULL,
    reason       text NOT NULL,
    held_since   timestamptz NOT NULL DEFAULT now(),
    held_by      text NOT NULL DEFAULT current_user,
    released_at  timestamptz,
    released_by  text,
    CHECK (released_at IS NULL OR released_at >= held_since)
);
CREATE INDEX IF NOT EXISTS holds_policy_subject ON {schema}.holds (policy, subject_key);
