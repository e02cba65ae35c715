ALTER TABLE persons DROP COLUMN last_login_at;
DROP TABLE password_resets;
