//! The catalog: principals ([`principals`]), APIs ([`apis`]) and error codes ([`errors`]), and
//! the identities (ARNs, principal and access key IDs) a seed gives the principals.

pub(crate) mod apis;
pub(crate) mod errors;
pub(crate) mod principals;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::random::rand_upper_alnum;
use apis::{APIS, event_source};
use principals::{PKind, PSpec, Principal};

/// A principal as a seed made it: its ARN and IDs (empty for AWS services).
pub(crate) struct Identity {
    pub(crate) spec: PSpec,
    pub(crate) arn: String,
    pub(crate) principal_id: String,
    pub(crate) access_key: String,
    pub(crate) issuer_arn: String,
    pub(crate) issuer_id: String,
}

impl Identity {
    pub(crate) fn arn_or_name(&self) -> &str {
        if self.arn.is_empty() {
            self.spec.name
        } else {
            &self.arn
        }
    }
}

pub(crate) struct Catalog {
    /// By [`Principal`], in its order.
    identities: Vec<Identity>,
    /// `eventSource` by API index.
    pub(crate) sources: Vec<String>,
}

impl Catalog {
    pub(crate) fn build(seed: u64, account: &str) -> Catalog {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x05ee_d1d5);
        let identities = Principal::ALL
            .iter()
            .map(|p| {
                let spec = p.spec();
                let id = rand_upper_alnum(&mut rng, 17);
                let key = rand_upper_alnum(&mut rng, 16);
                match spec.kind {
                    PKind::Role | PKind::ServiceRole => {
                        let path = if spec.kind == PKind::ServiceRole {
                            "aws-service-role/config.amazonaws.com/"
                        } else if spec.name.starts_with("AWSReservedSSO") {
                            "aws-reserved/sso.amazonaws.com/"
                        } else {
                            ""
                        };
                        Identity {
                            spec,
                            arn: format!(
                                "arn:aws:sts::{account}:assumed-role/{}/{}",
                                spec.name, spec.session
                            ),
                            principal_id: format!("AROA{id}:{}", spec.session),
                            access_key: format!("ASIA{key}"),
                            issuer_arn: format!("arn:aws:iam::{account}:role/{path}{}", spec.name),
                            issuer_id: format!("AROA{id}"),
                        }
                    }
                    PKind::User => Identity {
                        spec,
                        arn: format!("arn:aws:iam::{account}:user/{}", spec.name),
                        principal_id: format!("AIDA{id}"),
                        access_key: format!("AKIA{key}"),
                        issuer_arn: String::new(),
                        issuer_id: String::new(),
                    },
                    PKind::Service => Identity {
                        spec,
                        arn: String::new(),
                        principal_id: String::new(),
                        access_key: String::new(),
                        issuer_arn: String::new(),
                        issuer_id: String::new(),
                    },
                }
            })
            .collect();
        Catalog {
            identities,
            sources: APIS.iter().map(|a| event_source(a.svc)).collect(),
        }
    }

    pub(crate) fn identity(&self, who: Principal) -> &Identity {
        &self.identities[who as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::BUSINESS_SHARE;
    use crate::world::{JOB_POOL, choose_jobs};
    use apis::{ApiSpec, Group, api_index};

    #[test]
    fn catalog_is_consistent() {
        let mut total = 0.0;
        let mut writes = 0.0;
        let mut background = 0;
        for (g, share) in [
            (Group::Business, BUSINESS_SHARE),
            (Group::Steady, 1.0 - BUSINESS_SHARE),
        ] {
            let apis: Vec<&ApiSpec> = APIS.iter().filter(|a| a.group == g).collect();
            background += apis.len();
            let w: f64 = apis.iter().map(|a| a.w).sum();
            total += share;
            writes += share * apis.iter().filter(|a| !a.ro).map(|a| a.w).sum::<f64>() / w;
        }
        let wf = writes / total;
        assert!((0.07..0.13).contains(&wf), "write share {wf}");
        assert!(
            (60..=110).contains(&background),
            "{background} background APIs"
        );
        for a in APIS {
            assert!(!a.callers.is_empty(), "{}", a.name);
            assert_eq!(a.group == Group::Off, a.w == 0.0, "{}", a.name);
        }
        for (svc, name, periods) in JOB_POOL {
            let a = &APIS[api_index(svc, name) as usize];
            assert_eq!(a.group, Group::Off, "{name} must be called by its job only");
            assert!(!a.ro);
            assert!(periods.iter().all(|p| [5, 10, 15, 30, 60].contains(p)));
        }
        for (i, p) in Principal::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "Principal::ALL out of order at {p:?}");
        }
        for seed in 0..50 {
            let jobs = choose_jobs(seed, 2);
            assert!((4..=6).contains(&jobs.len()));
            assert!(jobs.iter().any(|j| j.period <= 15));
        }
    }
}
