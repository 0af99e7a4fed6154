-- The orders a session's organizer sees placed in the last minute (the sales dashboard,
-- GET /api/sessions/{id}/sales): counted by session and creation time, whichever API
-- process placed them.
CREATE INDEX orders_session_created_idx ON orders (session_id, created_at);
