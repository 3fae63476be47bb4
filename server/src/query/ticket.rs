//! Stateless tickets: a `QueryTicket` (who, what SQL, which table versions) signed with
//! HMAC-SHA256 under the server's secret. DoGet trusts nothing in it until the MAC checks
//! out and the caller is the principal it was issued to.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lakeport_proto::{QueryTicket, SignedTicket};
use prost::Message;
use sha2::Sha256;

use super::{QueryError, Scope};

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct TicketSigner {
    key: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TicketSigner {
    /// Signs with `secret`, or with 32 random bytes when none is configured.
    pub fn new(secret: Option<&str>, ttl: Duration) -> Self {
        let key = match secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                use rand::RngCore;
                let mut key = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                key
            }
        };
        Self { key, ttl }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    pub fn sign(&self, ticket: &QueryTicket) -> Vec<u8> {
        let payload = ticket.encode_to_vec();
        let mut mac = self.mac();
        mac.update(&payload);
        SignedTicket {
            payload,
            mac: mac.finalize().into_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    /// Checks the MAC, that `scope` is the principal it was issued to, and (for DoGet
    /// tickets, not prepared-statement handles) that it has not expired.
    pub fn verify(
        &self,
        bytes: &[u8],
        scope: &Scope,
        now_ms: i64,
    ) -> Result<QueryTicket, QueryError> {
        let signed = SignedTicket::decode(bytes)
            .map_err(|_| QueryError::BadTicket("not a lakeport ticket".into()))?;
        let mut mac = self.mac();
        mac.update(&signed.payload);
        mac.verify_slice(&signed.mac)
            .map_err(|_| QueryError::TicketForged)?;
        let ticket = QueryTicket::decode(signed.payload.as_ref())
            .map_err(|_| QueryError::BadTicket("malformed payload".into()))?;
        if ticket.principal != scope.principal_tag() {
            return Err(QueryError::TicketNotYours);
        }
        let age_ms = now_ms.saturating_sub(ticket.issued_at_ms);
        if !ticket.prepared && age_ms > self.ttl.as_millis() as i64 {
            return Err(QueryError::TicketExpired);
        }
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    fn scope(tenant: &str) -> Scope {
        Scope::new(Principal::Tenant(tenant.into()), None).unwrap()
    }

    fn ticket(tenant: &str, issued_at_ms: i64) -> QueryTicket {
        QueryTicket {
            principal: scope(tenant).principal_tag(),
            default_schema: tenant.into(),
            sql: "SELECT 1".into(),
            issued_at_ms,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_for_its_principal_only() {
        let signer = TicketSigner::new(Some("0123456789abcdef"), Duration::from_secs(60));
        let bytes = signer.sign(&ticket("acme", 1_000));
        assert_eq!(
            signer.verify(&bytes, &scope("acme"), 2_000).unwrap().sql,
            "SELECT 1"
        );
        assert!(matches!(
            signer.verify(&bytes, &scope("beta"), 2_000),
            Err(QueryError::TicketNotYours)
        ));
        assert!(matches!(
            signer.verify(&bytes, &scope("acme"), 1_000 + 61_000),
            Err(QueryError::TicketExpired)
        ));
    }

    #[test]
    fn altered_or_foreign_tickets_fail() {
        let signer = TicketSigner::new(Some("0123456789abcdef"), Duration::from_secs(60));
        let other = TicketSigner::new(None, Duration::from_secs(60));
        let bytes = other.sign(&ticket("acme", 1_000));
        assert!(matches!(
            signer.verify(&bytes, &scope("acme"), 1_000),
            Err(QueryError::TicketForged)
        ));
        let mut signed =
            SignedTicket::decode(signer.sign(&ticket("acme", 1_000)).as_slice()).unwrap();
        let mut forged = QueryTicket::decode(signed.payload.as_ref()).unwrap();
        forged.default_schema = "beta".into();
        signed.payload = forged.encode_to_vec();
        assert!(matches!(
            signer.verify(&signed.encode_to_vec(), &scope("acme"), 1_000),
            Err(QueryError::TicketForged)
        ));
    }
}
