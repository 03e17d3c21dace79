//! Where a detect run delivers its records: EventBridge, then (when configured) the S3 archive,
//! the alerts topic and Security Hub. Each is a destination of its own ([`InsightPublish::destinations`]): the
//! detect pipeline remembers, per record, which destinations took it, so one failing destination
//! never makes another receive a record twice.

use std::sync::Arc;

use async_trait::async_trait;

use crate::detect::{InsightPublish, PublishError};
use crate::insight::InsightRecord;

/// Publishes through `first` (EventBridge), then delivers what it accepted to the archive and
/// the alerts, when configured.
///
/// A record fails if any step failed for it; the detect pipeline keeps it for the next run,
/// which publishes it again with the same `eventID` (to the destinations that did not take it:
/// see [`InsightPublish::destinations`]). Archiving and alerting only what was published keeps a
/// record that EventBridge refused out of the archive and the chat channels until it is
/// published.
#[derive(Clone)]
pub struct Destinations {
    first: Arc<dyn InsightPublish>,
    then: Vec<(&'static str, Arc<dyn InsightPublish>)>,
}

impl Destinations {
    /// EventBridge (`first`), then the archive when there is one.
    pub fn new(first: Arc<dyn InsightPublish>, archive: Option<Arc<dyn InsightPublish>>) -> Self {
        Self {
            first,
            then: archive
                .map(|a| (ARCHIVE_DESTINATION, a))
                .into_iter()
                .collect(),
        }
    }

    /// Alerts (an SNS topic) after the others.
    pub fn with_alerts(self, alerts: Option<Arc<dyn InsightPublish>>) -> Self {
        self.then_to(ALERTS_DESTINATION, alerts)
    }

    /// Security Hub findings after the others.
    pub fn with_findings(self, findings: Option<Arc<dyn InsightPublish>>) -> Self {
        self.then_to(FINDINGS_DESTINATION, findings)
    }

    fn then_to(mut self, name: &'static str, publisher: Option<Arc<dyn InsightPublish>>) -> Self {
        if let Some(publisher) = publisher {
            self.then.push((name, publisher));
        }
        self
    }
}

/// The destination names [`Destinations`] delivers to, in order.
pub const EVENTBRIDGE_DESTINATION: &str = "eventbridge";
pub const ARCHIVE_DESTINATION: &str = "archive";
pub const ALERTS_DESTINATION: &str = "alerts";
pub const FINDINGS_DESTINATION: &str = "securityhub";

#[async_trait]
impl InsightPublish for Destinations {
    /// EventBridge, then the archive and the alerts when there are: the detect pipeline tracks
    /// each record's delivery to each separately, so an archive failure never re-sends what
    /// EventBridge took.
    fn destinations(&self) -> Vec<String> {
        std::iter::once(EVENTBRIDGE_DESTINATION)
            .chain(self.then.iter().map(|(name, _)| *name))
            .map(str::to_owned)
            .collect()
    }

    async fn publish_to(
        &self,
        destination: &str,
        records: &[InsightRecord],
    ) -> Result<(), (Vec<usize>, PublishError)> {
        if destination == EVENTBRIDGE_DESTINATION {
            return self.first.publish(records).await;
        }
        match self.then.iter().find(|(name, _)| *name == destination) {
            Some((_, publisher)) => publisher.publish(records).await,
            None => Err((
                (0..records.len()).collect(),
                PublishError::Failed(format!("no destination named {destination:?}")),
            )),
        }
    }

    async fn publish(&self, records: &[InsightRecord]) -> Result<(), (Vec<usize>, PublishError)> {
        let (mut failed, mut error) = match self.first.publish(records).await {
            Ok(()) => (Vec::new(), None),
            Err((failed, error)) => (failed, Some(error)),
        };
        let accepted: Vec<usize> = (0..records.len()).filter(|i| !failed.contains(i)).collect();
        if !accepted.is_empty() {
            let subset: Vec<InsightRecord> = accepted.iter().map(|&i| records[i].clone()).collect();
            for (_, then) in &self.then {
                if let Err((then_failed, then_error)) = then.publish(&subset).await {
                    failed.extend(then_failed.iter().filter_map(|&k| accepted.get(k)));
                    error.get_or_insert(then_error);
                }
            }
        }
        match error {
            None => Ok(()),
            Some(error) => {
                failed.sort_unstable();
                failed.dedup();
                let error = match error {
                    PublishError::Partial { reason, .. } | PublishError::Failed(reason)
                        if failed.len() < records.len() =>
                    {
                        PublishError::Partial {
                            failed: failed.len(),
                            total: records.len(),
                            reason,
                        }
                    }
                    other => other,
                };
                Err((failed, error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::CollectingPublisher;
    use crate::insight_files::tests::record;
    use async_trait::async_trait;

    /// Fails the records at the given indices.
    struct Refusing(Vec<usize>);

    #[async_trait]
    impl InsightPublish for Refusing {
        async fn publish(
            &self,
            records: &[InsightRecord],
        ) -> Result<(), (Vec<usize>, PublishError)> {
            let failed: Vec<usize> = self
                .0
                .iter()
                .copied()
                .filter(|&i| i < records.len())
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err((failed, PublishError::Failed("refused".into())))
            }
        }
    }

    #[tokio::test]
    async fn only_published_records_are_archived_and_failures_add_up() {
        let records: Vec<InsightRecord> = (0..4)
            .map(|i| record("1", "r", &format!("2026-03-02T14:0{i}:00Z")))
            .collect();
        let archive = Arc::new(CollectingPublisher::default());
        let chain = Destinations::new(Arc::new(Refusing(vec![1])), Some(archive.clone()));
        let (failed, error) = chain.publish(&records).await.unwrap_err();
        assert_eq!(failed, vec![1]);
        assert!(matches!(
            error,
            PublishError::Partial {
                failed: 1,
                total: 4,
                ..
            }
        ));
        let archived: Vec<String> = archive
            .records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.event_id.clone())
            .collect();
        assert_eq!(
            archived,
            [0, 2, 3]
                .iter()
                .map(|&i| records[i].event_id.clone())
                .collect::<Vec<_>>()
        );

        // The archive refusing the second record it gets (index 2 of the batch).
        let chain = Destinations::new(
            Arc::new(Refusing(vec![1])),
            Some(Arc::new(Refusing(vec![1]))),
        );
        let (failed, _) = chain.publish(&records).await.unwrap_err();
        assert_eq!(failed, vec![1, 2]);

        let chain = Destinations::new(Arc::new(CollectingPublisher::default()), None);
        assert!(chain.publish(&records).await.is_ok());
    }

    #[tokio::test]
    async fn alerts_are_a_destination_of_their_own() {
        let records: Vec<InsightRecord> = (0..3)
            .map(|i| record("1", "r", &format!("2026-03-02T14:0{i}:00Z")))
            .collect();
        let alerts = Arc::new(CollectingPublisher::default());
        let chain = Destinations::new(Arc::new(CollectingPublisher::default()), None)
            .with_alerts(Some(alerts.clone()));
        assert_eq!(chain.destinations(), ["eventbridge", "alerts"]);
        chain.publish_to("alerts", &records[..2]).await.unwrap();
        assert_eq!(alerts.records.lock().unwrap().len(), 2);
        let archive = Arc::new(Refusing(vec![0]));
        let chain = Destinations::new(Arc::new(CollectingPublisher::default()), Some(archive))
            .with_alerts(Some(alerts.clone()));
        assert_eq!(chain.destinations(), ["eventbridge", "archive", "alerts"]);
        let (failed, _) = chain.publish(&records).await.unwrap_err();
        assert_eq!(
            failed,
            vec![0],
            "the archive's failure, the alerts all sent"
        );
        assert_eq!(alerts.records.lock().unwrap().len(), 5);
        assert!(chain.publish_to("chat", &records).await.is_err());

        let findings = Arc::new(CollectingPublisher::default());
        let chain = Destinations::new(Arc::new(CollectingPublisher::default()), None)
            .with_alerts(Some(alerts.clone()))
            .with_findings(Some(findings.clone()));
        assert_eq!(
            chain.destinations(),
            ["eventbridge", "alerts", "securityhub"]
        );
        chain
            .publish_to("securityhub", &records[..1])
            .await
            .unwrap();
        assert_eq!(findings.records.lock().unwrap().len(), 1);
    }
}
