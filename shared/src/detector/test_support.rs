//! Small hand-built series and minutes for the rules' unit tests.

use super::*;
use crate::minute::format_minute;

/// The first minute of a day far enough from the epoch for a week of history.
pub const DAY0: Minute = 20_514 * MINUTES_PER_DAY;

pub fn call_key() -> SeriesKey {
    SeriesKey {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        event_source: "s3.amazonaws.com".into(),
        event_name: "PutObject".into(),
        error_code: None,
        principal: None,
    }
}

pub fn error_key() -> SeriesKey {
    SeriesKey {
        error_code: Some("AccessDenied".into()),
        ..call_key()
    }
}

/// `count` events of one caller.
pub fn cell(count: u64, arn: &str) -> Cell {
    let mut cell = Cell {
        count,
        ..Cell::default()
    };
    cell.arns.add(arn, count);
    cell
}

/// A minute as the rules see it, nothing about it unusual; `expected` one event an hour.
pub fn judged<'a>(key: &'a SeriesKey, minute: Minute, cell: Option<&'a Cell>) -> Judged<'a> {
    let x = cell.map_or(0, |c| c.count);
    Judged {
        key,
        minute,
        cell,
        x,
        x5: x,
        expected: Expectation {
            mean: 1.0 / 60.0,
            variance: 1.0 / 60.0,
        },
        heat: Heat::default(),
        judged: true,
    }
}

pub const HOT1: Heat = Heat {
    hot1: true,
    hot5: false,
    still_hot: false,
};
pub const HOT5: Heat = Heat {
    hot1: false,
    hot5: true,
    still_hot: false,
};
pub const STILL_HOT: Heat = Heat {
    hot1: false,
    hot5: false,
    still_hot: true,
};

/// A record's state, `eventTime`, insight average and insight duration.
pub fn summary(record: &InsightRecord) -> (InsightState, String, f64, i64) {
    let statistics = &record.insight_details.insight_context.statistics;
    (
        record.insight_details.state,
        record.event_time.clone(),
        statistics.insight.average,
        statistics.insight_duration,
    )
}

pub fn at(minute: Minute) -> String {
    format_minute(minute)
}

/// An open spike of `key` started at `start`, hot last at `last_hot`, with `events` counted.
pub fn open_spike(key: &SeriesKey, start: Minute, last_hot: Minute, events: u64) -> Episode {
    let mut episode = new_episode(
        EpisodeKind::Spike,
        key,
        &SeriesState::default(),
        start,
        start,
        None,
    );
    episode.last_hot = last_hot;
    episode.events = events;
    episode
}
