//! Wire messages of lakeport's own protocol, generated from `proto/lakeport.proto`.

#![allow(unreachable_pub)]

/// Version 1 of the lakeport protocol.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/lakeport.v1.rs"));
}

pub use v1::{
    DatasetUsage, IngestAck, IngestMetadata, MaintenanceRunRequest, MaintenanceRunResult,
    MaintenanceStep, QualityCheck, QualityReport, QualityRunRequest, QueryTicket, QuotaReport,
    QuotaReportRequest, ReadinessCheck, ReadinessRequest, ReadinessResult, RetentionRunRequest,
    SignedTicket, StoreRemoval, TableReadiness, TableVersion, Tenant, TenantArchiveRequest,
    TenantCreateRequest, TenantDeleteRequest, TenantDeleteResult, TenantEncryption,
    TenantExportRequest, TenantExportResult, TenantGetRequest, TenantList, TenantListRequest,
    TenantToken, TenantUpdateRequest, TenantUsage, TokenIssueRequest, TokenIssueResult,
    TokenRevokeRequest,
};
