//! Running the same code on whichever pool a [`haven_storage::Database`] holds.

/// Expands `$body` once per backend with `$pool` bound to that backend's pool, so
/// each copy is type-checked against its own driver:
/// `on_pool!(database, |pool| sqlx::query(SQL).execute(pool).await)`.
macro_rules! on_pool {
    ($database:expr, |$pool:ident| $body:expr) => {
        match $database {
            haven_storage::Database::Sqlite($pool) => $body,
            haven_storage::Database::Postgres($pool) => $body,
        }
    };
}
