//! Error kinds an event can carry, and the error code each gives on each service.

use rand::Rng;
use rand::rngs::StdRng;

use super::apis::ApiSpec;
use super::principals::{PKind, Principal};

/// The error an event fails with (an event without one succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Not authorized (background noise).
    Denied,
    /// Throttled (background noise on busy read APIs; throttling storms).
    Throttled,
    /// The resource does not exist (background noise, with the API's own code).
    NotFound,
    /// Over the instance limit (provisioning spikes).
    InstanceLimit,
    /// Over the vCPU limit (provisioning spikes).
    VcpuLimit,
}

impl ErrorKind {
    /// The `errorCode` this error has on `api`.
    pub(crate) fn code(self, api: &ApiSpec) -> &'static str {
        match self {
            ErrorKind::Denied => denied_code(api.svc),
            ErrorKind::Throttled => throttle_code(api.svc),
            ErrorKind::NotFound => api
                .notfound
                .map(|n| n.0)
                .unwrap_or("ResourceNotFoundException"),
            ErrorKind::InstanceLimit => "Client.InstanceLimitExceeded",
            ErrorKind::VcpuLimit => "Client.VcpuLimitExceeded",
        }
    }
}

fn denied_code(svc: &str) -> &'static str {
    match svc {
        "ec2" => "Client.UnauthorizedOperation",
        "iam"
        | "s3"
        | "sts"
        | "monitoring"
        | "rds"
        | "elasticloadbalancing"
        | "autoscaling"
        | "cloudformation"
        | "sqs" => "AccessDenied",
        _ => "AccessDeniedException",
    }
}

pub(crate) fn throttle_code(svc: &str) -> &'static str {
    if svc == "ec2" {
        "Client.RequestLimitExceeded"
    } else {
        "ThrottlingException"
    }
}

/// The error, if any, of a background call of `a` by `who` (AWS services never fail).
pub(crate) fn background_error(a: &ApiSpec, who: Principal, rng: &mut StdRng) -> Option<ErrorKind> {
    if who.spec().kind == PKind::Service {
        return None;
    }
    let r: f64 = rng.r#gen();
    let mut p = 0.0012;
    if r < p {
        return Some(ErrorKind::Denied);
    }
    p += a.throttle;
    if r < p {
        return Some(ErrorKind::Throttled);
    }
    if let Some((_, q)) = a.notfound {
        p += q;
        if r < p {
            return Some(ErrorKind::NotFound);
        }
    }
    None
}
