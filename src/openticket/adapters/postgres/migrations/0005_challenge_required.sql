-- Sessions whose buyers pass a human check (a challenge) before joining the waiting room
-- (issue 16). The challenge guards the waiting room, so only a queued session needs it.
ALTER TABLE sessions ADD COLUMN challenge_required boolean NOT NULL DEFAULT false
    CHECK (NOT challenge_required OR queue_enabled);
