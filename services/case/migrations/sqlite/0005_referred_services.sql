-- A service delivered through a referral is recorded once, when the referral completes.
ALTER TABLE case_services ADD COLUMN referral_id BLOB;
CREATE UNIQUE INDEX case_services_referral ON case_services (referral_id);
