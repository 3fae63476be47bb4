//! Building a store's HTTP client: environment, then the store's options, then the tenant's
//! key, each checked against the store kind's configuration keys.

use std::sync::Arc;

use deltalake::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::ClientOptions;
use object_store::gcp::GoogleCloudStorageBuilder;

use super::{config_error, Store, StoreKind};
use crate::lake::encryption::TenantKey;
use crate::lake::LakeError;

impl Store {
    pub(super) fn build_client(
        &self,
        key: Option<&TenantKey>,
    ) -> Result<Arc<dyn ObjectStore>, LakeError> {
        if let Some(key) = key {
            if !key.applies_to(self.kind) {
                return Err(config_error(
                    &self.name,
                    &format!(
                        "a {} key cannot be applied by a {:?} store",
                        key.kind(),
                        self.kind
                    ),
                ));
            }
        }
        // Environment first, then the store's options, then the tenant's key.
        let mut settings: Vec<(String, String)> = Vec::new();
        if let Some(prefix) = self.kind.env_prefix().filter(|_| !self.without_environment) {
            settings.extend(
                std::env::vars()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v)),
            );
        }
        settings.extend(self.options.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(key) = key {
            if matches!(key, TenantKey::AzureScope { .. }) && signs_with_account_key(&settings) {
                return Err(config_error(
                    &self.name,
                    "an Azure encryption scope needs token or SAS auth (azure_storage_token, azure_storage_sas_key, a service principal, managed or workload identity): with an account key, object_store signs each request before the scope header is added, and Azure refuses the signature",
                ));
            }
            settings.extend(key.store_options().into_iter().map(|(k, v)| (k.into(), v)));
        }
        let client_options = match key {
            Some(key) => key
                .client_options(ClientOptions::new())
                .map_err(|e| config_error(&self.name, &e.to_string()))?,
            None => ClientOptions::new(),
        };
        let url = self.root.as_str();
        let retry = self.retry.clone();
        let store: Arc<dyn ObjectStore> = match self.kind {
            StoreKind::Local => Arc::new(object_store::local::LocalFileSystem::new()),
            StoreKind::S3 => {
                let b = AmazonS3Builder::new()
                    .with_client_options(client_options)
                    .with_retry(retry)
                    .with_url(url);
                let b = self.configure(b, &settings, AmazonS3Builder::with_config)?;
                Arc::new(b.build().map_err(|e| self.build_error(e))?)
            }
            StoreKind::Azure => {
                let b = MicrosoftAzureBuilder::new()
                    .with_client_options(client_options)
                    .with_retry(retry)
                    .with_url(url);
                let b = self.configure(b, &settings, MicrosoftAzureBuilder::with_config)?;
                Arc::new(b.build().map_err(|e| self.build_error(e))?)
            }
            StoreKind::Gcs => {
                let b = GoogleCloudStorageBuilder::new()
                    .with_client_options(client_options)
                    .with_retry(retry)
                    .with_url(url);
                let b = self.configure(b, &settings, GoogleCloudStorageBuilder::with_config)?;
                Arc::new(b.build().map_err(|e| self.build_error(e))?)
            }
        };
        Ok(store)
    }

    /// Applies each setting the builder knows (its config key type `K`).
    fn configure<B, K: std::str::FromStr>(
        &self,
        mut builder: B,
        settings: &[(String, String)],
        with_config: impl Fn(B, K, String) -> B,
    ) -> Result<B, LakeError> {
        for (key, value) in settings {
            match key.parse::<K>() {
                Ok(parsed) => builder = with_config(builder, parsed, value.clone()),
                Err(_) => self.unknown_key(key)?,
            }
        }
        Ok(builder)
    }

    /// Environment variables of the store's family that object_store does not know are
    /// someone else's (AWS_PROFILE, ...); an unknown key in the store's own options is a
    /// mistake worth refusing.
    fn unknown_key(&self, key: &str) -> Result<(), LakeError> {
        if self.options.contains_key(key) {
            return Err(config_error(
                &self.name,
                &format!(
                    "options.{key} is not an object_store setting for {:?} stores",
                    self.kind
                ),
            ));
        }
        Ok(())
    }

    fn build_error(&self, e: object_store::Error) -> LakeError {
        // Builder errors name the bad setting; they never echo credential values.
        config_error(&self.name, &e.to_string())
    }
}

/// Whether an Azure client built from `settings` would sign requests with the account key
/// (SharedKey), which covers every `x-ms-*` header: object_store's own precedence.
fn signs_with_account_key(settings: &[(String, String)]) -> bool {
    let has = |wanted: AzureConfigKey| {
        settings.iter().any(|(k, v)| {
            k.parse::<AzureConfigKey>().is_ok_and(|key| key == wanted) && !v.is_empty()
        })
    };
    let emulator = settings.iter().any(|(k, v)| {
        k.parse::<AzureConfigKey>()
            .is_ok_and(|key| key == AzureConfigKey::UseEmulator)
            && v.eq_ignore_ascii_case("true")
    });
    let token = has(AzureConfigKey::Token);
    let account_key = has(AzureConfigKey::AccessKey);
    if emulator {
        // The emulator falls back to its well-known account key.
        account_key || !(token || has(AzureConfigKey::SasKey))
    } else {
        account_key && !token
    }
}
