//! `quality.run`: evaluates the data-quality expectations now and answers with every
//! result (a tenant for its own tables, an admin for any tenant's or all).

use lakeport_proto::{QualityCheck, QualityReport, QualityRunRequest};
use prost::Message;
use tonic::Status;

use super::action_body::{decode, tenant_scope};
use crate::auth::Principal;
use crate::error::Error;
use crate::quality::{Quality, QualityResult};

pub(super) const QUALITY_RUN: &str = "quality.run";

pub(super) async fn quality_run(
    quality: &Quality,
    who: &Principal,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Status> {
    let request: QualityRunRequest = decode(QUALITY_RUN, body)?;
    let only = tenant_scope(who, &request.tenant)?;
    let results = quality.run(only.as_deref()).await.map_err(Error::from)?;
    let report = QualityReport {
        checks: results.into_iter().map(check_message).collect(),
    };
    Ok(report.encode_to_vec())
}

fn check_message(r: QualityResult) -> QualityCheck {
    QualityCheck {
        state: r.state.as_str().into(),
        expectation: r.expectation.into(),
        column: r.column.unwrap_or_default(),
        failing: r.failing,
        samples: r.samples,
        detail: r.detail,
        checked_at_ms: r.checked_at.timestamp_millis(),
        tenant: r.tenant,
        dataset: r.dataset,
    }
}
