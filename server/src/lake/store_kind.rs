//! The kinds of object store a lake can use, by URL scheme.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Local,
    S3,
    Gcs,
    Azure,
}

impl StoreKind {
    pub(super) fn of(url: &url::Url) -> Option<Self> {
        match url.scheme() {
            "file" => Some(Self::Local),
            "s3" | "s3a" => Some(Self::S3),
            "gs" => Some(Self::Gcs),
            "az" | "azure" | "abfs" | "abfss" | "adl" => Some(Self::Azure),
            _ => None,
        }
    }

    /// Environment variables object_store reads for this kind of store.
    pub(super) fn env_prefix(self) -> Option<&'static str> {
        match self {
            Self::Local => None,
            Self::S3 => Some("AWS_"),
            Self::Gcs => Some("GOOGLE_"),
            Self::Azure => Some("AZURE_"),
        }
    }
}
