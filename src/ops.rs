//! Operator commands: tenants and their API keys (`herald tenants …`, `herald keys …`), on DynamoDB
//! or on the embedded store of a data folder, and `herald aws init`, which creates the table and
//! the queues for an emulator or a fresh account without SAM.
//!
//! A new API key is returned once, to be printed once; the stores keep only its hash, and nothing
//! here ever shows a hash.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use herald_app::auth::{generate_api_key, record_for_key, NewApiKey};
use herald_aws::aws_config::SdkConfig;
use herald_aws::{aws_sdk_dynamodb, aws_sdk_sqs, DynamoConfig};
use herald_core::ports::{Page, PageRequest, Store, StoreError};
use herald_core::{ApiKeyId, ApiKeyRecord, Tenant, TenantId};
use herald_embedded::EmbeddedDb;
use herald_lambda::AwsConfig;
use jiff::Timestamp;

/// The longest tenant or key name accepted.
const MAX_NAME_CHARS: usize = 200;

/// The store the operator commands work on: the embedded store in `data_dir` when given, else
/// DynamoDB as configured by the environment (the Lambda functions' variables and the standard
/// AWS chain).
pub async fn open_store(data_dir: Option<&Path>) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(dir) = data_dir {
        let db = EmbeddedDb::open(dir).with_context(|| {
            format!(
                "opening the data folder {} (is `herald dev` running on it? it locks the file)",
                dir.display()
            )
        })?;
        return Ok(Arc::new(db.store()));
    }
    let config = AwsConfig::from_env()
        .context("reading the AWS configuration (or pass --data-dir for the embedded store)")?;
    let sdk = herald_aws::load_sdk_config().await;
    let state = herald_lambda::build_state(&sdk, &config).context("building the AWS clients")?;
    Ok(state.app.store)
}

/// A tenant just created, and its first API key.
#[derive(Debug)]
pub struct NewTenant {
    pub tenant: Tenant,
    pub key: NewApiKey,
}

fn checked_name(name: &str, what: &str) -> anyhow::Result<String> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "the {what} name is empty");
    anyhow::ensure!(
        name.chars().count() <= MAX_NAME_CHARS,
        "the {what} name is longer than {MAX_NAME_CHARS} characters"
    );
    Ok(name.to_owned())
}

/// Creates a tenant named `name` and a first API key for it (named "default").
pub async fn create_tenant(
    store: &dyn Store,
    name: &str,
    now: Timestamp,
) -> anyhow::Result<NewTenant> {
    create_tenant_with_id(store, name, None, now).await
}

/// [`create_tenant`], with the tenant id `id` when given (recreating a known tenant, fixtures).
/// A given id in use is an error (the store's `put_tenant` overwrites, so it is checked first).
pub async fn create_tenant_with_id(
    store: &dyn Store,
    name: &str,
    id: Option<TenantId>,
    now: Timestamp,
) -> anyhow::Result<NewTenant> {
    let tenant = Tenant {
        // `TenantId::default()` is a new id.
        id: id.unwrap_or_default(),
        name: checked_name(name, "tenant")?,
        created_at: now,
    };
    if id.is_some()
        && store
            .get_tenant(&tenant.id)
            .await
            .context("reading the tenant")?
            .is_some()
    {
        anyhow::bail!("there is a tenant {} already", tenant.id);
    }
    store
        .put_tenant(&tenant)
        .await
        .context("storing the tenant")?;
    let key = generate_api_key(tenant.id, "default", now);
    store.put_api_key(&key.record).await.with_context(|| {
        format!(
            "storing the first API key (tenant {} exists; `herald keys create --tenant {}` makes one)",
            tenant.id, tenant.id
        )
    })?;
    Ok(NewTenant { tenant, key })
}

async fn existing_tenant(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<Tenant> {
    store
        .get_tenant(tenant)
        .await
        .context("reading the tenant")?
        .with_context(|| format!("there is no tenant {tenant}"))
}

/// Creates another API key for an existing tenant.
pub async fn create_key(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
    now: Timestamp,
) -> anyhow::Result<NewApiKey> {
    let name = checked_name(name, "key")?;
    existing_tenant(store, tenant).await?;
    let key = generate_api_key(*tenant, &name, now);
    store
        .put_api_key(&key.record)
        .await
        .context("storing the API key")?;
    Ok(key)
}

/// The shortest API key `import_key` accepts: generated keys have 46 characters.
const MIN_IMPORTED_KEY_CHARS: usize = 32;
/// The longest: more is surely not a key.
const MAX_IMPORTED_KEY_CHARS: usize = 512;

/// The key text of a key file: surrounding whitespace (the final newline) removed; printable
/// ASCII without spaces, as it travels in `Authorization: Bearer <key>`.
pub fn checked_key_text(text: &str) -> anyhow::Result<&str> {
    let key = text.trim();
    anyhow::ensure!(!key.is_empty(), "the key file is empty");
    anyhow::ensure!(
        key.chars().all(|c| c.is_ascii_graphic()),
        "the key must be one word of printable ASCII (no spaces, no line breaks)"
    );
    let chars = key.len();
    anyhow::ensure!(
        (MIN_IMPORTED_KEY_CHARS..=MAX_IMPORTED_KEY_CHARS).contains(&chars),
        "the key has {chars} characters; an API key needs {MIN_IMPORTED_KEY_CHARS} to {MAX_IMPORTED_KEY_CHARS}"
    );
    Ok(key)
}

/// Registers a key given by the operator (its text read from a file, never from the command line)
/// for an existing tenant, storing only its hash, like a generated one. For keys that must be known
/// in advance: fixtures, or moving a tenant to another deployment. A key registered already (for
/// any tenant) is an error.
pub async fn import_key(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
    key_text: &str,
    now: Timestamp,
) -> anyhow::Result<ApiKeyRecord> {
    let name = checked_name(name, "key")?;
    let key = checked_key_text(key_text)?;
    existing_tenant(store, tenant).await?;
    let record = record_for_key(key, *tenant, &name, now);
    match store.put_api_key(&record).await {
        Ok(()) => Ok(record),
        Err(StoreError::AlreadyExists) => {
            anyhow::bail!("this API key is registered already (`herald keys list` shows the keys)")
        }
        Err(e) => Err(anyhow::Error::new(e).context("storing the API key")),
    }
}

/// An existing tenant's keys, newest first.
pub async fn list_keys(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<Vec<ApiKeyRecord>> {
    existing_tenant(store, tenant).await?;
    store
        .list_api_keys(tenant)
        .await
        .context("listing the API keys")
}

/// Revokes one of a tenant's keys: from then on the API answers 401 to it.
pub async fn revoke_key(
    store: &dyn Store,
    tenant: &TenantId,
    key: &ApiKeyId,
    now: Timestamp,
) -> anyhow::Result<()> {
    match store.revoke_api_key(tenant, key, now).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => anyhow::bail!("tenant {tenant} has no API key {key}"),
        Err(e) => Err(anyhow::Error::new(e).context("revoking the API key")),
    }
}

/// One page of tenants, newest first.
pub async fn list_tenants(
    store: &dyn Store,
    limit: usize,
    cursor: Option<String>,
) -> anyhow::Result<Page<Tenant>> {
    let page = PageRequest {
        limit: limit.clamp(1, 1000),
        cursor,
    };
    match store.list_tenants(&page).await {
        Ok(page) => Ok(page),
        Err(StoreError::BadCursor) => anyhow::bail!("the cursor is not one this store made"),
        Err(e) => Err(anyhow::Error::new(e).context("listing the tenants")),
    }
}

/// Seconds precision is enough for people.
fn when(at: Timestamp) -> String {
    at.round(jiff::Unit::Second).unwrap_or(at).to_string()
}

/// The text `tenants create` prints: the ids, and the key (shown this once).
pub fn format_new_tenant(new: &NewTenant) -> String {
    format!(
        "tenant   {}\nname     {}\n{}",
        new.tenant.id,
        new.tenant.name,
        format_new_key(&new.key)
    )
}

/// The text `keys create` prints: the key id and the key (shown this once).
pub fn format_new_key(key: &NewApiKey) -> String {
    format!("key id   {}\napi key  {}\n", key.record.id, key.key)
}

/// The text `keys import` prints: the key id (the key itself is the operator's already).
pub fn format_imported_key(record: &ApiKeyRecord) -> String {
    format!("key id   {}\ntenant   {}\n", record.id, record.tenant_id)
}

/// A table of keys: id, name, created, revoked (never the hash).
pub fn format_keys(keys: &[ApiKeyRecord]) -> String {
    let rows: Vec<[String; 4]> = keys
        .iter()
        .map(|k| {
            [
                k.id.to_string(),
                k.name.clone(),
                when(k.created_at),
                k.revoked_at.map_or_else(|| "-".into(), when),
            ]
        })
        .collect();
    table(["ID", "NAME", "CREATED", "REVOKED"], &rows)
}

/// A table of tenants: id, name, created.
pub fn format_tenants(tenants: &[Tenant]) -> String {
    let rows: Vec<[String; 3]> = tenants
        .iter()
        .map(|t| [t.id.to_string(), t.name.clone(), when(t.created_at)])
        .collect();
    table(["ID", "NAME", "CREATED"], &rows)
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let lines = std::iter::once(header.map(str::to_owned)).chain(rows.iter().cloned());
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// What `herald aws init` made (or found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub table: String,
    /// False when the table was there already.
    pub table_created: bool,
    pub events_queue_url: String,
    pub deliveries_queue_url: String,
}

impl AwsResources {
    /// The `export` lines that point `herald dev --store aws` and the operator commands here.
    pub fn exports(&self) -> String {
        format!(
            "export HERALD_TABLE={}\nexport HERALD_EVENTS_QUEUE_URL={}\nexport HERALD_DELIVERIES_QUEUE_URL={}\n",
            shell_quote(&self.table),
            shell_quote(&self.events_queue_url),
            shell_quote(&self.deliveries_queue_url)
        )
    }

    /// The configuration the Lambda functions would read from [`Self::exports`], without touching
    /// the process environment.
    pub fn aws_config(&self) -> anyhow::Result<AwsConfig> {
        AwsConfig::from_lookup(|name| match name {
            "HERALD_TABLE" => Some(self.table.clone()),
            "HERALD_EVENTS_QUEUE_URL" => Some(self.events_queue_url.clone()),
            "HERALD_DELIVERIES_QUEUE_URL" => Some(self.deliveries_queue_url.clone()),
            _ => None,
        })
        .context("building the AWS configuration")
    }
}

/// `'text'` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Creates the DynamoDB table `table` (with its indexes and TTL) unless it exists, and the queues
/// `<queue_prefix>-events` and `<queue_prefix>-deliveries` with their dead-letter queues (SQS
/// answers the existing URLs when they exist with the same settings).
pub async fn aws_init(
    sdk: &SdkConfig,
    table: &str,
    queue_prefix: &str,
) -> anyhow::Result<AwsResources> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let table_created = match herald_aws::create_table(&dynamodb, &DynamoConfig::new(table)).await {
        Ok(()) => true,
        Err(StoreError::AlreadyExists) => false,
        Err(e) => return Err(anyhow::Error::new(e).context(format!("creating the table {table}"))),
    };
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (events_queue_url, deliveries_queue_url) = herald_aws::create_queues(&sqs, queue_prefix)
        .await
        .with_context(|| {
            format!("creating the queues {queue_prefix}-events and {queue_prefix}-deliveries")
        })?;
    Ok(AwsResources {
        table: table.to_owned(),
        table_created,
        events_queue_url,
        deliveries_queue_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::ports::TenantStore;

    #[test]
    fn key_tables_show_ids_names_and_times_but_no_hash() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut key = generate_api_key(TenantId::new(), "ci", now).record;
        let listed = format_keys(std::slice::from_ref(&key));
        assert!(listed.starts_with("ID"), "{listed}");
        assert!(listed.contains(&key.id.to_string()));
        assert!(listed.contains("2027-01-15T08:00:00Z"), "{listed}");
        assert!(!listed.contains(&key.hash));
        key.revoked_at = Some(now);
        let listed = format_keys(&[key]);
        assert_eq!(
            listed.matches("2027-01-15T08:00:00Z").count(),
            2,
            "{listed}"
        );
    }

    #[test]
    fn exports_are_shell_quoted() {
        let resources = AwsResources {
            table: "herald".into(),
            table_created: true,
            events_queue_url: "http://127.0.0.1:5000/123/herald-events".into(),
            deliveries_queue_url: "it's".into(),
        };
        let exports = resources.exports();
        assert!(exports.contains("export HERALD_TABLE='herald'\n"));
        assert!(exports.contains("export HERALD_DELIVERIES_QUEUE_URL='it'\\''s'\n"));
        assert_eq!(resources.aws_config().unwrap().table, "herald");
    }

    #[test]
    fn key_files_hold_one_printable_word() {
        let key = "hk_fixture_key_for_local_invocations_only_0000";
        assert_eq!(checked_key_text(&format!("{key}\n")).unwrap(), key);
        assert!(checked_key_text("  \n").is_err());
        assert!(checked_key_text("hk_short").is_err());
        assert!(checked_key_text(&format!("{key} {key}")).is_err());
        assert!(checked_key_text(&format!("{key}\n{key}")).is_err());
        assert!(checked_key_text(&"k".repeat(513)).is_err());
    }

    #[tokio::test]
    async fn a_given_key_is_registered_for_a_given_tenant_and_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDb::open(dir.path()).unwrap();
        let store = db.store();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let tenant: TenantId = "ten_01JDXF0000000000000000TEST".parse().unwrap();
        let key = "hk_fixture_key_for_local_invocations_only_0000";

        // Importing needs the tenant.
        assert!(import_key(&store, &tenant, "fixture", key, now)
            .await
            .is_err());
        let new = create_tenant_with_id(&store, "Fixture", Some(tenant), now)
            .await
            .unwrap();
        assert_eq!(new.tenant.id, tenant);
        assert_eq!(
            store.get_tenant(&tenant).await.unwrap().unwrap().name,
            "Fixture"
        );
        // The id is taken now.
        assert!(create_tenant_with_id(&store, "Other", Some(tenant), now)
            .await
            .is_err());

        let record = import_key(&store, &tenant, "fixture", &format!("{key}\n"), now)
            .await
            .unwrap();
        assert_eq!(record.tenant_id, tenant);
        assert_ne!(record.hash, key);
        assert!(!record.hash.contains(&key[3..]));
        let found = store
            .find_api_key(&herald_app::auth::hash_api_key(key))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id, found.tenant_id), (record.id, tenant));
        let printed = format_imported_key(&record);
        assert!(printed.contains(&record.id.to_string()) && !printed.contains(key));

        // Once only, whichever tenant asks.
        let other = create_tenant(&store, "Other", now).await.unwrap().tenant.id;
        assert!(import_key(&store, &other, "again", key, now).await.is_err());
        assert_eq!(list_keys(&store, &tenant).await.unwrap().len(), 2);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Acme ", "tenant").unwrap(), "Acme");
        assert!(checked_name("   ", "tenant").is_err());
        assert!(checked_name(&"x".repeat(201), "tenant").is_err());
    }
}
