-- What the last release of each dataset (a CTDC export's scope and k) published, per
-- class of identical rows: the next release changes a class by 0 or by at least k
-- rows, so two releases compared never isolate a record added or removed between
-- them.
CREATE TABLE release_classes (
    dataset  TEXT NOT NULL,
    class    TEXT NOT NULL,
    released BIGINT NOT NULL,
    PRIMARY KEY (dataset, class)
);
