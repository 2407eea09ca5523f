-- The privacy budget ledger, beside the release ledger: the privacy loss (ε) that
-- releases under differential privacy have spent from each dataset (the victim
-- records registered in one calendar year), in millionths of ε so that sums are
-- exact. A release that would take a dataset past the configured budget is refused.
CREATE TABLE privacy_budget (
    dataset     TEXT PRIMARY KEY,
    spent_micro BIGINT NOT NULL
);

-- What a release under differential privacy spent from each dataset it touched.
ALTER TABLE releases ADD COLUMN epsilon_micro BIGINT;
