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
use herald_app::auth::{generate_api_key, NewApiKey};
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
    let tenant = Tenant {
        id: TenantId::new(),
        name: checked_name(name, "tenant")?,
        created_at: now,
    };
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
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Acme ", "tenant").unwrap(), "Acme");
        assert!(checked_name("   ", "tenant").is_err());
        assert!(checked_name(&"x".repeat(201), "tenant").is_err());
    }
}
