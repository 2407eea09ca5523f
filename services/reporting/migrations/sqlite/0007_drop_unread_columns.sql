-- Columns nothing reads since the indicator counters: times kept as epoch seconds
-- instead, and means of control kept as one row per value in screening_labels.
ALTER TABLE screenings DROP COLUMN presumed_at;
ALTER TABLE screenings DROP COLUMN identified_at;
ALTER TABLE screenings DROP COLUMN means_of_control;
ALTER TABLE cases DROP COLUMN first_service_at;
