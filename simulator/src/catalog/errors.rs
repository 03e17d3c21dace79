//! Error kinds an event can carry, and the error code each gives on each service.

use super::apis::ApiSpec;

/// Error kinds carried by an event.
pub(crate) const E_NONE: u8 = 0;
pub(crate) const E_DENIED: u8 = 1;
pub(crate) const E_THROTTLE: u8 = 2;
pub(crate) const E_NOTFOUND: u8 = 3;
pub(crate) const E_INSTLIMIT: u8 = 4;
pub(crate) const E_VCPU: u8 = 5;

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

pub(crate) fn error_code(api: &ApiSpec, err: u8) -> Option<&'static str> {
    match err {
        E_DENIED => Some(denied_code(api.svc)),
        E_THROTTLE => Some(throttle_code(api.svc)),
        E_NOTFOUND => Some(
            api.notfound
                .map(|n| n.0)
                .unwrap_or("ResourceNotFoundException"),
        ),
        E_INSTLIMIT => Some("Client.InstanceLimitExceeded"),
        E_VCPU => Some("Client.VcpuLimitExceeded"),
        _ => None,
    }
}
