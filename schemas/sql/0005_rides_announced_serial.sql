-- The message key names the bike; a SYSTEM line that names another serial does not change
-- that (the ride is the key's), but what it said is kept here for the operator: NULL when it
-- agreed with the key, or when the stream has no key (its SYSTEM line then names the bike).
ALTER TABLE daily.rides ADD COLUMN announced_serial text;
