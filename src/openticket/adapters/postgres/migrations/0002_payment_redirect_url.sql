-- Where the buyer approves a payment at its provider (LINE Pay's payment page), kept so
-- that asking to pay the same order again answers the same page.
ALTER TABLE payments ADD COLUMN redirect_url text;
