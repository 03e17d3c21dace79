//! The per-principal rules (opt-in, `principal_insights`): which principals are tracked (a cap
//! per account, idle ones evicted), when a principal series may report a spike (the principal's
//! warm-up, the series' age, the account's rate as a floor), and the first-seen rule (a
//! sensitive API, a region, or 3 services within 15 minutes, that a warm principal never used).
//!
//! The spike rule itself, its baselines and its learning are the account series' ([`spike`],
//! [`learning`]): a principal series is a series like any other, judged against its own history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::insight::{PrincipalContext, SCOPE_API};
use crate::principal::is_sensitive;
use crate::series::{ALL_PRINCIPALS, SERVICE_WIDE};

/// What the detector knows of one principal of an account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrincipalProfile {
    /// Its first call: the warm-up counts from here.
    pub first_seen: Minute,
    pub last_active: Minute,
    /// Regions it has called in.
    pub regions: BTreeSet<String>,
    /// Services (`eventSource`) of which it has called a sensitive API: a first call of another
    /// sensitive API of the same service is its routine widening, not a first-seen insight.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive_services: BTreeSet<String>,
    /// Its largest counts per UTC day, spikes included:
    /// `(day, [one API in 1 minute, one API in 5, one service in 1, one service in 5])`. A
    /// person's console sessions and a pipeline's runs move from API to API and service to
    /// service; what they reach on any of them, on two days of the last seven, is the
    /// principal's usual burst ([`PrincipalProfile::usual_burst`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peaks: Vec<(i64, [u64; 4])>,
    /// Services (`eventSource`) it has called, noted since `services_from` (a state saved before
    /// they were kept starts its own warm-up for them, so that it reports no service as new).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub services: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_from: Option<Minute>,
    /// Services it called for the first time in the last [`NEW_SERVICES_WINDOW_MINUTES`], once
    /// warm: a sweep across services it never used is an enumeration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_services: Vec<(Minute, String)>,
    /// Read APIs (`source:name`) it called for the first time in the last
    /// [`NEW_SERVICES_WINDOW_MINUTES`], once warm, outside console sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_reads: Vec<(Minute, String)>,
    /// When it last had a sweep record (`services` or `reads`): one enumeration is one record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swept_at: Option<Minute>,
    /// Roles it assumed or tried to assume (`AssumeRole`'s `roleArn`), noted since `roles_from`
    /// (a state saved before they were kept starts that history at the principal's next call),
    /// at most [`MAX_ROLES_KEPT`].
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub roles: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_from: Option<Minute>,
    /// Roles it asked for the first time in the last [`NEW_SERVICES_WINDOW_MINUTES`], once warm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_roles: Vec<(Minute, String)>,
}

/// A warm principal asking for this many roles it never assumed (or tried to) within
/// [`NEW_SERVICES_WINDOW_MINUTES`] is a `PrincipalFirstSeenInsight` (`roles`): lateral movement
/// by role chaining, which tries the roles the stolen credentials might be trusted by. One new
/// role is a pipeline given a new environment.
const NEW_ROLES_FOR_INSIGHT: usize = 2;

/// Roles kept per principal: past this many, a principal is a hub (an organisation's
/// automation) and its new roles are not judged.
const MAX_ROLES_KEPT: usize = 256;

/// A warm principal calling this many read APIs it never called, of at least
/// [`NEW_READS_SERVICES`] services, within [`NEW_SERVICES_WINDOW_MINUTES`] and not from the
/// console, is a `PrincipalFirstSeenInsight` (`reads`): an enumeration of the services it
/// already uses, by their APIs it never needed. A pipeline's and a script's reads are the same
/// from run to run; a person's first visit to a console page is a session (not judged).
const NEW_READS_FOR_INSIGHT: usize = 6;
const NEW_READS_SERVICES: usize = 2;

/// New values (services, read APIs, roles) a principal's sweep keeps within its window: enough
/// to pass every threshold and to name the sweep; a larger sweep is bounded here, not in the
/// state or the record.
const MAX_SWEEP_VALUES: usize = 64;

/// A warm principal calling this many services it never used within
/// [`NEW_SERVICES_WINDOW_MINUTES`] is a `PrincipalFirstSeenInsight` (`services`): the shape of
/// an enumeration with stolen credentials (what can this key reach?). One new service is a team
/// adopting it, two a new task; a person's console sessions and a pipeline's runs keep to the
/// services they use.
const NEW_SERVICES_FOR_INSIGHT: usize = 3;
const NEW_SERVICES_WINDOW_MINUTES: Minute = 15;

/// Days of [`PrincipalProfile::peaks`] kept (the current one and the seven before).
const PEAK_DAYS: i64 = 8;

impl PrincipalProfile {
    /// Its usual burst on one API (`service_wide` false) or one service: the second largest
    /// of its daily largest 1- and 5-minute counts of the last 7 days, with the margin of a
    /// recurring burst ([`spike::routine_bar`]). As for a series' recurring bursts, one day's
    /// burst in a week is not a routine (an attack does not raise the bar for the next), two
    /// are.
    fn usual_burst(&self, minute: Minute, service_wide: bool) -> (u64, u64) {
        let today = minute.div_euclid(MINUTES_PER_DAY);
        let offset = if service_wide { 2 } else { 0 };
        let second = |i: usize| {
            let mut values: Vec<u64> = self
                .peaks
                .iter()
                .filter(|(day, _)| *day < today && today - day < PEAK_DAYS)
                .map(|(_, p)| p[i])
                .collect();
            values.sort_unstable_by(|a, b| b.cmp(a));
            values.get(1).copied().map_or(0, spike::routine_bar)
        };
        (second(offset), second(offset + 1))
    }

    fn note_burst(&mut self, minute: Minute, service_wide: bool, x: u64, x5: u64) {
        let today = minute.div_euclid(MINUTES_PER_DAY);
        if self.peaks.last().is_none_or(|(day, _)| *day != today) {
            self.peaks.push((today, [0; 4]));
            self.peaks.retain(|(day, _)| today - day < PEAK_DAYS);
        }
        if let Some((_, peaks)) = self.peaks.last_mut() {
            let offset = if service_wide { 2 } else { 0 };
            peaks[offset] = peaks[offset].max(x);
            peaks[offset + 1] = peaks[offset + 1].max(x5);
        }
    }
}

/// A person browsing the console: most of the cell's calls came from a console session and
/// every API it names is a read by its name (for a service-wide cell, the APIs it lists). Such a
/// minute is the person's session, paced by their clicks and by what each console page loads;
/// it is never a principal call-rate spike and does not count in the principal's usual bursts.
/// A sensitive API, a new region and the account's own insights still apply to it.
pub(super) fn is_console_browsing(key: &SeriesKey, cell: &Cell) -> bool {
    if cell.console * 2 <= cell.count {
        return false;
    }
    if key.is_service_wide() {
        let apis = cell.errors.sorted();
        !apis.is_empty()
            && apis
                .iter()
                .all(|(name, _)| crate::classify::is_read_only_name(name))
    } else {
        crate::classify::is_read_only_name(&key.event_name)
    }
}

/// A service-wide minute whose top API holds at least this share of it is that API's burst:
/// the API's own series judges it, and one burst gives one insight, not two.
const ONE_API_SHARE: f64 = 0.8;

/// Per account, its tracked principals.
pub type Principals = BTreeMap<String, BTreeMap<String, PrincipalProfile>>;

/// `PrincipalFirstSeenInsight`'s reasons, as `insightContext.principal.firstSeen` names them.
pub const FIRST_SEEN_API: &str = "sensitiveApi";
pub const FIRST_SEEN_REGION: &str = "region";
pub const FIRST_SEEN_SERVICES: &str = "services";
pub const FIRST_SEEN_READS: &str = "reads";
pub const FIRST_SEEN_ROLES: &str = "roles";

/// A principal idle this long may give its place to a new one when its account is at the cap.
const REPLACEABLE_AFTER_MINUTES: i64 = MINUTES_PER_DAY;

/// The minute's principal series as the detector takes them.
#[derive(Debug, Default)]
pub(super) struct PrincipalMinute {
    /// Principal series refused this minute (their principal is not tracked).
    pub refused: BTreeSet<SeriesKey>,
    /// Per principal series: the account's bar for the same API (or service) this minute.
    pub floors: HashMap<SeriesKey, (u64, u64)>,
    /// First-seen records.
    pub records: Vec<InsightRecord>,
}

impl DetectorState {
    /// Whether a principal series is taken: principal insights are on, and it is the account's
    /// rate or the series of a tracked principal.
    pub(super) fn tracks_principal(&self, config: &DetectorConfig, key: &SeriesKey) -> bool {
        config.principal_insights
            && match key.reported_principal() {
                None => true,
                Some(principal) => self
                    .principals
                    .get(&key.account)
                    .is_some_and(|p| p.contains_key(principal)),
            }
    }

    /// Admits the minute's principals (the cap, replacing an idle one), applies the first-seen
    /// rule, notes their activity, and takes the account's bars for their series.
    pub(super) fn prepare_principals(
        &mut self,
        config: &DetectorConfig,
        minute: Minute,
        cells: &HashMap<SeriesKey, Cell>,
        warm: bool,
    ) -> PrincipalMinute {
        let mut view = PrincipalMinute::default();
        if !config.principal_insights {
            view.refused = cells
                .keys()
                .filter(|k| k.principal.is_some())
                .cloned()
                .collect();
            return view;
        }
        // The minute's keys, per principal, in key order (deterministic).
        let mut by_principal: BTreeMap<(&str, &str), Vec<(&SeriesKey, &Cell)>> = BTreeMap::new();
        for (key, cell) in cells {
            if let Some(principal) = key.reported_principal() {
                by_principal
                    .entry((key.account.as_str(), principal))
                    .or_default()
                    .push((key, cell));
            }
        }
        for ((account, principal), mut keys) in by_principal {
            keys.sort_by(|a, b| a.0.cmp(b.0));
            if !self.admit_principal(config, account, principal, minute) {
                self.principals_untracked += 1;
                view.refused.extend(keys.iter().map(|(k, _)| (*k).clone()));
                continue;
            }
            let Some(profile) = self.principals.get(account).and_then(|p| p.get(principal)) else {
                continue;
            };
            let profile_warm =
                warm && minute - profile.first_seen >= config.principal_warmup_minutes;
            if profile_warm {
                view.records
                    .extend(first_seen(config, &self.series, profile, minute, &keys));
            }
            if let Some(profile) = self
                .principals
                .get_mut(account)
                .and_then(|p| p.get_mut(principal))
            {
                if let Some(record) = new_services(config, profile, minute, &keys, warm) {
                    view.records.extend(record);
                }
                if let Some(record) = new_reads(config, &self.series, profile, minute, &keys, warm)
                {
                    view.records.extend(record);
                }
                if let Some(record) = new_roles(config, profile, minute, &keys, warm) {
                    view.records.extend(record);
                }
                profile.last_active = minute;
                for (key, _) in &keys {
                    if !profile.regions.contains(&key.region) {
                        profile.regions.insert(key.region.clone());
                    }
                    if is_sensitive(&key.event_source, &key.event_name)
                        && !profile.sensitive_services.contains(&key.event_source)
                    {
                        profile.sensitive_services.insert(key.event_source.clone());
                    }
                }
            }
            let Some(profile) = self.principals.get(account).and_then(|p| p.get(principal)) else {
                continue;
            };
            for (key, cell) in &keys {
                let account_key = SeriesKey {
                    principal: Some(ALL_PRINCIPALS.to_owned()),
                    ..(*key).clone()
                };
                let mut floor = self
                    .series
                    .get(&account_key)
                    .map_or((0, 0), |state| state.bar(&account_key, minute));
                let service_wide = key.is_service_wide();
                if !is_sensitive(&key.event_source, &key.event_name) {
                    let usual = profile.usual_burst(minute, service_wide);
                    floor = (floor.0.max(usual.0), floor.1.max(usual.1));
                }
                let top_api = cell.errors.sorted().first().map_or(0, |(_, n)| *n);
                if (service_wide && top_api as f64 >= ONE_API_SHARE * cell.count as f64)
                    || is_console_browsing(key, cell)
                {
                    floor = (u64::MAX, u64::MAX);
                }
                view.floors.insert((*key).clone(), floor);
            }
        }
        view
    }

    /// Tracks the principal if it is, or if its account has room, or if the principal of the
    /// account idle longest has been idle a day (it is forgotten, with its series).
    fn admit_principal(
        &mut self,
        config: &DetectorConfig,
        account: &str,
        principal: &str,
        minute: Minute,
    ) -> bool {
        let profiles = self.principals.entry(account.to_owned()).or_default();
        if profiles.contains_key(principal) {
            return true;
        }
        if profiles.len() >= config.max_principals_per_account {
            let idlest = profiles
                .iter()
                .min_by_key(|(name, p)| (p.last_active, (*name).clone()))
                .map(|(name, p)| (name.clone(), p.last_active));
            match idlest {
                Some((name, last)) if minute - last >= REPLACEABLE_AFTER_MINUTES => {
                    profiles.remove(&name);
                    let before = self.series.len();
                    self.series.retain(|k, _| {
                        !(k.account == account && k.principal.as_deref() == Some(name.as_str()))
                    });
                    self.evicted += (before - self.series.len()) as u64;
                }
                _ => return false,
            }
        }
        let profiles = self.principals.entry(account.to_owned()).or_default();
        profiles.insert(
            principal.to_owned(),
            PrincipalProfile {
                first_seen: minute,
                last_active: minute,
                ..PrincipalProfile::default()
            },
        );
        true
    }

    /// Notes the minute's counts of the principals' series, for their usual bursts ([`PrincipalProfile::peaks`]).
    pub(super) fn note_principal_bursts(
        &mut self,
        minute: Minute,
        cells: &HashMap<SeriesKey, Cell>,
    ) {
        for (key, cell) in cells {
            let Some(principal) = key.reported_principal() else {
                continue;
            };
            if is_console_browsing(key, cell) {
                continue;
            }
            let Some(state) = self.series.get(key) else {
                continue;
            };
            let Some((_, x, _)) = state.recent.back().filter(|(m, _, _)| *m == minute) else {
                continue;
            };
            let x5 = state.recent.iter().map(|(_, c, _)| *c).sum();
            if let Some(profile) = self
                .principals
                .get_mut(&key.account)
                .and_then(|p| p.get_mut(principal))
            {
                profile.note_burst(minute, key.is_service_wide(), *x, x5);
            }
        }
    }

    /// Forgets principals idle for `evict_idle_minutes` (their series go by the same rule).
    pub(super) fn evict_idle_principals(&mut self, config: &DetectorConfig, minute: Minute) {
        for profiles in self.principals.values_mut() {
            profiles.retain(|_, p| minute - p.last_active < config.evict_idle_minutes);
        }
        self.principals.retain(|_, p| !p.is_empty());
    }
}

/// Whether a principal series may open a spike this minute (the trail's warm-up and the API
/// filter aside): the account's rate never does; a principal's series once the principal is past
/// its warm-up and the series past its minimum age.
pub(super) fn judges(
    config: &DetectorConfig,
    principals: &Principals,
    key: &SeriesKey,
    state: &SeriesState,
    minute: Minute,
) -> bool {
    let Some(principal) = key.principal.as_deref() else {
        return true;
    };
    if principal == ALL_PRINCIPALS {
        return false;
    }
    let warm = principals
        .get(&key.account)
        .and_then(|p| p.get(principal))
        .is_some_and(|p| minute - p.first_seen >= config.principal_warmup_minutes);
    warm && minute - state.first_seen >= config.principal_series_min_age_minutes
}

/// The first-seen rule for one warm principal's keys of the minute: a sensitive API it never
/// called (no series of it yet), then each region it never used (its busiest API there), one
/// record each.
fn first_seen(
    config: &DetectorConfig,
    series: &BTreeMap<SeriesKey, SeriesState>,
    profile: &PrincipalProfile,
    minute: Minute,
    keys: &[(&SeriesKey, &Cell)],
) -> Vec<InsightRecord> {
    let mut out = Vec::new();
    let mut regions_reported = BTreeSet::new();
    let api_keys = || {
        keys.iter()
            .filter(|(k, _)| k.event_name != SERVICE_WIDE && config.api_filter.admits(k))
    };
    for (key, cell) in api_keys() {
        if !series.contains_key(*key)
            && is_sensitive(&key.event_source, &key.event_name)
            && !profile.sensitive_services.contains(&key.event_source)
        {
            if !profile.regions.contains(&key.region) {
                regions_reported.insert(key.region.as_str());
            }
            out.extend(first_seen_records(
                key,
                cell,
                minute,
                FIRST_SEEN_API,
                Vec::new(),
            ));
        }
    }
    let mut busiest: BTreeMap<&str, (&SeriesKey, &Cell)> = BTreeMap::new();
    for (key, cell) in api_keys() {
        if profile.regions.contains(&key.region) || regions_reported.contains(key.region.as_str()) {
            continue;
        }
        let entry = busiest.entry(key.region.as_str()).or_insert((key, cell));
        if cell.count > entry.1.count {
            *entry = (key, cell);
        }
    }
    // A principal's very first minute has no regions yet: that is not a new region.
    if profile.regions.is_empty() {
        return out;
    }
    for (key, cell) in busiest.into_values() {
        out.extend(first_seen_records(
            key,
            cell,
            minute,
            FIRST_SEEN_REGION,
            Vec::new(),
        ));
    }
    out
}

/// Notes the services the principal calls this minute; once the principal and its service
/// history are warm, its first calls of [`NEW_SERVICES_FOR_INSIGHT`] services within
/// [`NEW_SERVICES_WINDOW_MINUTES`] are one `PrincipalFirstSeenInsight` (`services`), on the
/// busiest API of the minute's new services. The sweep's list then starts again.
fn new_services(
    config: &DetectorConfig,
    profile: &mut PrincipalProfile,
    minute: Minute,
    keys: &[(&SeriesKey, &Cell)],
    warm: bool,
) -> Option<[InsightRecord; 2]> {
    let from = *profile.services_from.get_or_insert(minute);
    let judged = warm
        && minute - profile.first_seen >= config.principal_warmup_minutes
        && minute - from >= config.principal_warmup_minutes;
    let mut busiest: Option<(&SeriesKey, &Cell)> = None;
    for (key, cell) in keys {
        if key.is_service_wide() || profile.services.contains(&key.event_source) {
            continue;
        }
        if judged && config.api_filter.admits(key) {
            note_new(&mut profile.new_services, minute, &key.event_source);
            keep_busiest(&mut busiest, key, cell);
        }
    }
    for (key, _) in keys {
        if !profile.services.contains(&key.event_source) {
            profile.services.insert(key.event_source.clone());
        }
    }
    forget_before_window(&mut profile.new_services, minute);
    let (key, cell) = busiest?;
    if profile.new_services.len() < NEW_SERVICES_FOR_INSIGHT || recently_swept(profile, minute) {
        return None;
    }
    let services = take_values(&mut profile.new_services);
    profile.swept_at = Some(minute);
    Some(first_seen_records(
        key,
        cell,
        minute,
        FIRST_SEEN_SERVICES,
        services,
    ))
}

/// Notes a sweep's new value at `minute`, once, and at most [`MAX_SWEEP_VALUES`] of them.
fn note_new(values: &mut Vec<(Minute, String)>, minute: Minute, value: &str) {
    if values.len() < MAX_SWEEP_VALUES && !values.iter().any(|(_, v)| v == value) {
        values.push((minute, value.to_owned()));
    }
}

/// Forgets a sweep's values older than [`NEW_SERVICES_WINDOW_MINUTES`].
fn forget_before_window(values: &mut Vec<(Minute, String)>, minute: Minute) {
    values.retain(|(m, _)| minute - m < NEW_SERVICES_WINDOW_MINUTES);
}

/// A reported sweep's values, in the order they came; its list starts again.
fn take_values(values: &mut Vec<(Minute, String)>) -> Vec<String> {
    values.drain(..).map(|(_, v)| v).collect()
}

/// Keeps the cell with the most calls (the first of equals): the one a sweep's record is on.
fn keep_busiest<'a>(
    busiest: &mut Option<(&'a SeriesKey, &'a Cell)>,
    key: &'a SeriesKey,
    cell: &'a Cell,
) {
    if busiest.is_none_or(|(_, c)| cell.count > c.count) {
        *busiest = Some((key, cell));
    }
}

/// A sweep record in the last [`NEW_SERVICES_WINDOW_MINUTES`]: the enumeration going on is
/// reported already.
fn recently_swept(profile: &PrincipalProfile, minute: Minute) -> bool {
    profile
        .swept_at
        .is_some_and(|at| minute - at < NEW_SERVICES_WINDOW_MINUTES)
}

/// Whether the principal ever called this API (in any region it used): a series of it exists
/// (series are evicted after `evict_idle_minutes` idle).
fn called_before(
    series: &BTreeMap<SeriesKey, SeriesState>,
    profile: &PrincipalProfile,
    key: &SeriesKey,
) -> bool {
    series.contains_key(key)
        || profile.regions.iter().any(|region| {
            *region != key.region
                && series.contains_key(&SeriesKey {
                    region: region.clone(),
                    ..key.clone()
                })
        })
}

/// Notes the read APIs the principal calls for the first time this minute (not from the
/// console); once it is warm, [`NEW_READS_FOR_INSIGHT`] of them from [`NEW_READS_SERVICES`]
/// services within [`NEW_SERVICES_WINDOW_MINUTES`] are one `PrincipalFirstSeenInsight`
/// (`reads`), on the busiest of the minute's new ones.
fn new_reads(
    config: &DetectorConfig,
    series: &BTreeMap<SeriesKey, SeriesState>,
    profile: &mut PrincipalProfile,
    minute: Minute,
    keys: &[(&SeriesKey, &Cell)],
    warm: bool,
) -> Option<[InsightRecord; 2]> {
    if !(warm && minute - profile.first_seen >= config.principal_warmup_minutes) {
        return None;
    }
    let mut busiest: Option<(&SeriesKey, &Cell)> = None;
    for (key, cell) in keys {
        if key.is_service_wide()
            || !crate::classify::is_read_only_name(&key.event_name)
            || is_console_browsing(key, cell)
            || !config.api_filter.admits(key)
            || called_before(series, profile, key)
        {
            continue;
        }
        let api = format!("{}:{}", key.event_source, key.event_name);
        note_new(&mut profile.new_reads, minute, &api);
        keep_busiest(&mut busiest, key, cell);
    }
    forget_before_window(&mut profile.new_reads, minute);
    let (key, cell) = busiest?;
    if profile.new_reads.len() < NEW_READS_FOR_INSIGHT || recently_swept(profile, minute) {
        return None;
    }
    let services: BTreeSet<&str> = profile
        .new_reads
        .iter()
        .filter_map(|(_, a)| a.split_once(':').map(|(s, _)| s))
        .collect();
    if services.len() < NEW_READS_SERVICES {
        return None;
    }
    let reads = take_values(&mut profile.new_reads);
    profile.swept_at = Some(minute);
    Some(first_seen_records(
        key,
        cell,
        minute,
        FIRST_SEEN_READS,
        reads,
    ))
}

/// Notes the roles the principal asks for this minute (`AssumeRole`); once it and its role
/// history are warm, [`NEW_ROLES_FOR_INSIGHT`] roles it never asked for within
/// [`NEW_SERVICES_WINDOW_MINUTES`] are one `PrincipalFirstSeenInsight` (`roles`), on its
/// busiest `AssumeRole` series of the minute.
fn new_roles(
    config: &DetectorConfig,
    profile: &mut PrincipalProfile,
    minute: Minute,
    keys: &[(&SeriesKey, &Cell)],
    warm: bool,
) -> Option<[InsightRecord; 2]> {
    // The history starts at the principal's first minute (or, for a state saved before roles
    // were kept, its next one), whether or not it asks for a role: a user that never assumed
    // one and suddenly tries several is the case to catch.
    let from = *profile.roles_from.get_or_insert(minute);
    let asking: Vec<&(&SeriesKey, &Cell)> = keys
        .iter()
        .filter(|(_, cell)| !cell.roles.is_empty())
        .collect();
    if asking.is_empty() {
        return None;
    }
    let judged = warm
        && minute - profile.first_seen >= config.principal_warmup_minutes
        && minute - from >= config.principal_warmup_minutes
        && profile.roles.len() < MAX_ROLES_KEPT;
    let mut busiest: Option<(&SeriesKey, &Cell)> = None;
    for (key, cell) in &asking {
        for (role, _) in cell.roles.sorted() {
            if profile.roles.contains(role) {
                continue;
            }
            if judged && config.api_filter.admits(key) {
                note_new(&mut profile.new_roles, minute, role);
                keep_busiest(&mut busiest, key, cell);
            }
            if profile.roles.len() < MAX_ROLES_KEPT {
                profile.roles.insert(role.to_owned());
            }
        }
    }
    forget_before_window(&mut profile.new_roles, minute);
    let (key, cell) = busiest?;
    if profile.new_roles.len() < NEW_ROLES_FOR_INSIGHT {
        return None;
    }
    let roles = take_values(&mut profile.new_roles);
    Some(first_seen_records(
        key,
        cell,
        minute,
        FIRST_SEEN_ROLES,
        roles,
    ))
}

/// A first-seen insight: Start at the minute, End one minute later, the minute's calls as its
/// statistics; the baseline is empty (the principal never called it there).
fn first_seen_records(
    key: &SeriesKey,
    cell: &Cell,
    minute: Minute,
    reason: &str,
    values: Vec<String>,
) -> [InsightRecord; 2] {
    // A sweep's record may fall on a sensitive API's first call, in the same minute: its own
    // kind keeps their identifiers apart.
    let kind = match reason {
        FIRST_SEEN_SERVICES => "FirstSeenServices",
        FIRST_SEEN_READS => "FirstSeenReads",
        FIRST_SEEN_ROLES => "FirstSeenRoles",
        _ => "FirstSeen",
    };
    let shared = shared_event_id(key, kind, minute, 0);
    let duration = baseline_duration(minute);
    let empty = TopK::default();
    let record = |state: InsightState| {
        let mut record = build_record(RecordParts {
            key,
            state,
            event_time: match state {
                InsightState::Start => minute,
                InsightState::End => minute + 1,
            },
            shared_event_id: &shared,
            statistics: Statistics {
                baseline: Average { average: 0.0 },
                insight: Average {
                    average: average(cell.count, 1),
                },
                insight_duration: 1,
                baseline_duration: duration,
            },
            attributions: attributions(
                key,
                [&cell.arns, &cell.agents, &cell.errors],
                1,
                [&empty, &empty, &empty],
                duration,
            ),
        });
        record.insight_details.insight_type = InsightType::PrincipalFirstSeenInsight;
        if let Some(principal) = key.reported_principal() {
            record.insight_details.insight_context.principal = Some(PrincipalContext {
                user_identity_arn: principal.to_owned(),
                scope: SCOPE_API.to_owned(),
                first_seen: Some(reason.to_owned()),
                first_seen_values: values.clone(),
            });
        }
        record
    };
    [record(InsightState::Start), record(InsightState::End)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Minute = MINUTES_PER_DAY;
    const T0: Minute = 29_540_160; // a midnight

    fn key(principal: &str, region: &str, source: &str, name: &str) -> SeriesKey {
        SeriesKey {
            account: "111122223333".into(),
            region: region.into(),
            event_source: source.into(),
            event_name: name.into(),
            error_code: None,
            principal: Some(principal.into()),
        }
    }

    fn cell(count: u64, arn: &str) -> Cell {
        let mut cell = Cell {
            count,
            ..Cell::default()
        };
        cell.arns.add(arn, count);
        cell.errors.add("null", count);
        cell
    }

    fn config() -> DetectorConfig {
        DetectorConfig {
            principal_insights: true,
            ..DetectorConfig::default()
        }
    }

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

    /// Alice works in us-east-1 from T0 for `days` days: a few EC2 reads an hour.
    fn routine(state: &mut DetectorState, config: &DetectorConfig, days: i64) {
        routine_with(state, config, days, false);
    }

    /// The same, with her service-wide EC2 series as ingest folds it when `service_wide`.
    fn routine_with(
        state: &mut DetectorState,
        config: &DetectorConfig,
        days: i64,
        service_wide: bool,
    ) {
        for minute in T0..T0 + days * DAY {
            let mut cells = HashMap::new();
            if minute % 60 == 7 {
                cells.insert(
                    key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeInstances"),
                    cell(3, ALICE),
                );
                if service_wide {
                    let mut apis = cell(3, ALICE);
                    apis.errors = TopK::default();
                    apis.errors.add("DescribeInstances", 3);
                    cells.insert(
                        key(ALICE, "us-east-1", "ec2.amazonaws.com", SERVICE_WIDE),
                        apis,
                    );
                }
            }
            state.evaluate_minute(config, minute, &cells);
        }
    }

    fn types(records: &[InsightRecord]) -> Vec<(String, InsightState, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.insight_details.insight_type.as_str().to_owned(),
                    r.insight_details.state,
                    r.insight_details.event_name.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_sensitive_api_new_to_a_warm_principal_is_first_seen() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let now = T0 + 4 * DAY + 600;
        let secret = key(
            ALICE,
            "us-east-1",
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
        );
        let cells = HashMap::from([(secret.clone(), cell(2, ALICE))]);
        let out = state.evaluate_minute(&config, now, &cells);
        assert_eq!(
            types(&out),
            [
                (
                    "PrincipalFirstSeenInsight".into(),
                    InsightState::Start,
                    "GetSecretValue".into()
                ),
                (
                    "PrincipalFirstSeenInsight".into(),
                    InsightState::End,
                    "GetSecretValue".into()
                ),
            ]
        );
        let context = out[0].insight_details.insight_context.principal.clone();
        assert_eq!(
            context,
            Some(PrincipalContext {
                user_identity_arn: ALICE.into(),
                scope: SCOPE_API.into(),
                first_seen: Some(FIRST_SEEN_API.into()),
                first_seen_values: Vec::new(),
            })
        );
        assert_eq!(
            out[0]
                .insight_details
                .insight_context
                .statistics
                .insight
                .average,
            2.0
        );
        assert_eq!(out[0].series(), secret);
        // Called again: it is no longer first.
        let again = state.evaluate_minute(&config, now + 30, &cells);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_principal_in_its_warm_up_has_no_first_seen() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 2); // the trail is warm, alice is not (3 days)
        let cells = HashMap::from([(
            key(ALICE, "eu-west-1", "kms.amazonaws.com", "Decrypt"),
            cell(1, ALICE),
        )]);
        assert!(
            state
                .evaluate_minute(&config, T0 + 2 * DAY + 5, &cells)
                .is_empty()
        );
    }

    #[test]
    fn a_region_new_to_a_warm_principal_is_first_seen_once() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let now = T0 + 4 * DAY + 601;
        let cells = HashMap::from([
            (
                key(
                    ALICE,
                    "ap-south-1",
                    "ec2.amazonaws.com",
                    "DescribeInstances",
                ),
                cell(4, ALICE),
            ),
            (
                key(ALICE, "ap-south-1", "ec2.amazonaws.com", "DescribeVpcs"),
                cell(1, ALICE),
            ),
        ]);
        let out = state.evaluate_minute(&config, now, &cells);
        assert_eq!(out.len(), 2, "{:?}", types(&out));
        assert_eq!(out[0].aws_region, "ap-south-1");
        assert_eq!(out[0].insight_details.event_name, "DescribeInstances");
        assert_eq!(
            out[0]
                .insight_details
                .insight_context
                .principal
                .as_ref()
                .and_then(|p| p.first_seen.clone()),
            Some(FIRST_SEEN_REGION.into())
        );
        // The region is now known.
        let cells = HashMap::from([(
            key(ALICE, "ap-south-1", "ec2.amazonaws.com", "DescribeSubnets"),
            cell(1, ALICE),
        )]);
        assert!(state.evaluate_minute(&config, now + 1, &cells).is_empty());
    }

    #[test]
    fn principals_are_capped_per_account_and_an_idle_one_gives_its_place() {
        let config = DetectorConfig {
            max_principals_per_account: 2,
            ..config()
        };
        let mut state = DetectorState::default();
        let user = |n: u32| format!("arn:aws:iam::111122223333:user/u{n}");
        let call = |n: u32| {
            HashMap::from([(
                key(&user(n), "us-east-1", "s3.amazonaws.com", "ListBuckets"),
                cell(1, &user(n)),
            )])
        };
        state.evaluate_minute(&config, T0, &call(1));
        state.evaluate_minute(&config, T0 + 1, &call(2));
        state.evaluate_minute(&config, T0 + 2, &call(3));
        let tracked = |state: &DetectorState| -> Vec<String> {
            state.principals["111122223333"].keys().cloned().collect()
        };
        assert_eq!(tracked(&state), [user(1), user(2)]);
        assert_eq!(state.principals_untracked, 1);
        assert_eq!(
            state
                .series
                .keys()
                .filter(|k| k.principal.is_some())
                .count(),
            2
        );
        // A day later u2 keeps working; u1 is idle: u3 takes its place, u1's series go.
        state.evaluate_minute(&config, T0 + DAY, &call(2));
        state.evaluate_minute(&config, T0 + DAY + 2, &call(3));
        assert_eq!(tracked(&state), [user(2), user(3)]);
        assert!(state.series.keys().all(|k| k.principal != Some(user(1))));
        // Idle past `evict_idle_minutes`: forgotten.
        state.evaluate_minute(&config, T0 + 16 * DAY, &HashMap::new());
        assert!(state.principals.is_empty());
    }

    #[test]
    fn with_principal_insights_off_principal_series_are_ignored() {
        let config = DetectorConfig::default();
        let mut state = DetectorState::default();
        let cells = HashMap::from([(
            key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeInstances"),
            cell(30, ALICE),
        )]);
        state.evaluate_minute(&config, T0, &cells);
        assert!(state.series.is_empty());
        assert!(state.principals.is_empty());
    }

    #[test]
    fn a_principal_spike_is_judged_against_its_own_baseline_and_the_accounts_rate() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let now = T0 + 4 * DAY + 607; // her usual minute: 40 calls instead of 3
        let burst = key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeInstances");
        let out = state.evaluate_minute(
            &config,
            now,
            &HashMap::from([(burst.clone(), cell(40, ALICE))]),
        );
        let started: Vec<_> = out
            .iter()
            .filter(|r| r.insight_details.state == InsightState::Start)
            .collect();
        assert_eq!(started.len(), 1, "{:?}", types(&out));
        assert_eq!(
            started[0].insight_details.insight_type,
            InsightType::PrincipalApiCallRateInsight
        );
        assert_eq!(started[0].series(), burst);

        // The same burst where the account's other principals routinely make 60 such calls a
        // minute is no insight.
        let mut state = DetectorState::default();
        let everyone = SeriesKey {
            principal: Some(ALL_PRINCIPALS.into()),
            ..burst.clone()
        };
        for minute in T0..T0 + 4 * DAY {
            let mut cells = HashMap::new();
            if minute % 60 == 7 {
                cells.insert(burst.clone(), cell(3, ALICE));
            }
            if minute % 30 == 0 {
                cells.insert(everyone.clone(), cell(60, "x"));
            }
            state.evaluate_minute(&config, minute, &cells);
        }
        let cells = HashMap::from([
            (burst.clone(), cell(40, ALICE)),
            (everyone.clone(), cell(40, "x")),
        ]);
        assert!(state.evaluate_minute(&config, now, &cells).is_empty());
    }

    #[test]
    fn console_browsing_is_a_session_not_a_spike_but_the_same_reads_from_a_program_are() {
        let config = config();
        let now = T0 + 4 * DAY + 607;
        let reads = key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeInstances");
        let run = |console: u64, name: &str| {
            let mut state = DetectorState::default();
            routine(&mut state, &config, 4);
            let key = SeriesKey {
                event_name: name.into(),
                ..reads.clone()
            };
            let mut burst = cell(40, ALICE);
            burst.console = console;
            let out = state.evaluate_minute(&config, now, &HashMap::from([(key, burst)]));
            let starts = out
                .iter()
                .filter(|r| r.insight_details.state == InsightState::Start)
                .count();
            (starts, state)
        };
        // 40 reads in a minute, 30 of them from the console: a person browsing.
        let (starts, state) = run(30, "DescribeInstances");
        assert_eq!(starts, 0);
        // ... which does not become her usual burst either.
        let profile = &state.principals["111122223333"][ALICE];
        assert!(profile.peaks.iter().all(|(_, p)| p[0] < 40), "{profile:?}");
        // The same reads from the CLI (half or fewer from the console) are a spike.
        assert_eq!(run(20, "DescribeInstances").0, 1);
        assert_eq!(run(0, "DescribeInstances").0, 1);
        // A console write is not browsing: judged like any other call.
        let mut writes = cell(40, ALICE);
        writes.console = 40;
        let terminate = key(
            ALICE,
            "us-east-1",
            "ec2.amazonaws.com",
            "TerminateInstances",
        );
        assert!(!is_console_browsing(&terminate, &writes));
        assert!(is_console_browsing(&reads, &writes));
        // Service-wide: browsing when every API the cell names is a read.
        let service = key(ALICE, "us-east-1", "ec2.amazonaws.com", SERVICE_WIDE);
        let mut apis = cell(40, ALICE);
        apis.console = 40;
        apis.errors = TopK::default();
        apis.errors.add("DescribeInstances", 30);
        apis.errors.add("DescribeVpcs", 10);
        assert!(is_console_browsing(&service, &apis));
        apis.errors.add("RunInstances", 1);
        assert!(!is_console_browsing(&service, &apis));
    }

    fn first_seen_of(out: &[InsightRecord]) -> Option<(String, Vec<String>)> {
        out.first()
            .and_then(|r| r.insight_details.insight_context.principal.clone())
            .and_then(|p| Some((p.first_seen?, p.first_seen_values)))
    }

    #[test]
    fn reads_it_never_made_across_services_are_first_seen_once() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let now = T0 + 4 * DAY + 601;
        let call =
            |state: &mut DetectorState, offset: Minute, source: &str, name: &str, c: Cell| {
                let cells = HashMap::from([(key(ALICE, "us-east-1", source, name), c)]);
                state.evaluate_minute(&config, now + offset, &cells)
            };
        let ec2 = "ec2.amazonaws.com";
        // Five new EC2 reads, then a write: no sweep (one service; a write is not a read).
        for (i, name) in [
            "DescribeVpcs",
            "DescribeSubnets",
            "DescribeVolumes",
            "DescribeSecurityGroups",
            "DescribeImages",
        ]
        .iter()
        .enumerate()
        {
            assert!(call(&mut state, i as Minute, ec2, name, cell(5, ALICE)).is_empty());
        }
        assert!(call(&mut state, 5, ec2, "RunInstances", cell(1, ALICE)).is_empty());
        // The usual API is not new; a console page's reads are a session, never a sweep.
        assert!(call(&mut state, 6, ec2, "DescribeInstances", cell(9, ALICE)).is_empty());
        let mut console = cell(8, ALICE);
        console.console = 8;
        assert!(call(&mut state, 6, "iam.amazonaws.com", "ListRoles", console).is_empty());
        // The sixth new read, of a second service: one record, naming the six.
        let out = call(
            &mut state,
            7,
            "iam.amazonaws.com",
            "ListUsers",
            cell(4, ALICE),
        );
        assert_eq!(out.len(), 2, "{:?}", types(&out));
        assert_eq!(out[0].insight_details.event_name, "ListUsers");
        let (why, values) = first_seen_of(&out).unwrap_or_default();
        assert_eq!(why, FIRST_SEEN_READS);
        assert_eq!(values.len(), 6, "{values:?}");
        assert_eq!(values[0], "ec2.amazonaws.com:DescribeVpcs");
        assert_eq!(values[5], "iam.amazonaws.com:ListUsers");
        // One enumeration, one record: more new reads (and services) within 15 minutes add
        // none.
        for (i, (source, name)) in [
            ("iam.amazonaws.com", "ListGroups"),
            ("iam.amazonaws.com", "ListPolicies"),
            ("s3.amazonaws.com", "ListBuckets"),
            ("lambda.amazonaws.com", "ListFunctions20150331"),
            ("logs.amazonaws.com", "DescribeLogGroups"),
            ("dynamodb.amazonaws.com", "ListTables"),
        ]
        .iter()
        .enumerate()
        {
            let out = call(&mut state, 8 + i as Minute, source, name, cell(3, ALICE));
            assert!(out.is_empty(), "{:?}", types(&out));
        }
    }

    #[test]
    fn roles_it_never_asked_for_are_first_seen_once_two_are_new() {
        const CI: &str = "arn:aws:iam::111122223333:role/ci";
        let config = config();
        let mut state = DetectorState::default();
        let assume = key(CI, "us-east-1", "sts.amazonaws.com", "AssumeRole");
        let asking = |roles: &[&str]| {
            let mut c = cell(
                roles.len() as u64,
                "arn:aws:sts::111122223333:assumed-role/ci/run",
            );
            for role in roles {
                c.roles
                    .add(&format!("arn:aws:iam::111122223333:role/{role}"), 1);
            }
            c
        };
        // Four days of runs assuming its two deploy roles.
        for minute in T0..T0 + 4 * DAY {
            let mut cells = HashMap::new();
            if minute % 180 == 0 {
                cells.insert(assume.clone(), asking(&["deploy", "terraform"]));
            }
            state.evaluate_minute(&config, minute, &cells);
        }
        let now = T0 + 4 * DAY + 601;
        // Its usual roles, and one new role (a pipeline given a new environment): nothing.
        let out = state.evaluate_minute(
            &config,
            now,
            &HashMap::from([(assume.clone(), asking(&["deploy", "staging-deploy"]))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));
        let out = state.evaluate_minute(
            &config,
            now + 30,
            &HashMap::from([(assume.clone(), asking(&["terraform", "staging-deploy"]))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));
        // Two roles it never asked for within 15 minutes: role chaining.
        let out = state.evaluate_minute(
            &config,
            now + 60,
            &HashMap::from([(assume.clone(), asking(&["deploy", "admin", "admin"]))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));
        let out = state.evaluate_minute(
            &config,
            now + 62,
            &HashMap::from([(assume.clone(), asking(&["billing", "deploy"]))]),
        );
        assert_eq!(out.len(), 2, "{:?}", types(&out));
        assert_eq!(out[0].insight_details.event_name, "AssumeRole");
        assert_eq!(
            first_seen_of(&out),
            Some((
                FIRST_SEEN_ROLES.into(),
                vec![
                    "arn:aws:iam::111122223333:role/admin".into(),
                    "arn:aws:iam::111122223333:role/billing".into()
                ]
            ))
        );
        // Known now.
        let out = state.evaluate_minute(
            &config,
            now + 63,
            &HashMap::from([(assume.clone(), asking(&["admin", "billing"]))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));

        // A principal that never asked for a role, and after its warm-up tries two: role
        // chaining with a user's key.
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let alices = key(ALICE, "us-east-1", "sts.amazonaws.com", "AssumeRole");
        let out = state.evaluate_minute(
            &config,
            now,
            &HashMap::from([(alices, asking(&["admin", "billing"]))]),
        );
        assert_eq!(
            first_seen_of(&out).map(|(why, roles)| (why, roles.len())),
            Some((FIRST_SEEN_ROLES.into(), 2))
        );

        // A state saved before roles were kept starts their history, and its warm-up, at the
        // principal's next call.
        let mut state = DetectorState::default();
        for minute in T0..T0 + 4 * DAY {
            let mut cells = HashMap::new();
            if minute % 180 == 0 {
                cells.insert(assume.clone(), cell(2, CI));
            }
            state.evaluate_minute(&config, minute, &cells);
        }
        for profile in state.principals.values_mut().flat_map(|p| p.values_mut()) {
            profile.roles_from = None;
        }
        let out = state.evaluate_minute(
            &config,
            now,
            &HashMap::from([(assume.clone(), asking(&["deploy", "terraform"]))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));
    }

    #[test]
    fn a_sweep_across_services_a_warm_principal_never_used_is_first_seen_once() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let now = T0 + 4 * DAY + 601;
        let sweep = |state: &mut DetectorState, offset: Minute, source: &str, name: &str| {
            let cells = HashMap::from([(key(ALICE, "us-east-1", source, name), cell(6, ALICE))]);
            state.evaluate_minute(&config, now + offset, &cells)
        };
        // Two new services in 15 minutes: a new task, not a sweep.
        assert!(sweep(&mut state, 0, "s3.amazonaws.com", "ListBuckets").is_empty());
        assert!(
            sweep(
                &mut state,
                5,
                "lambda.amazonaws.com",
                "ListFunctions20150331"
            )
            .is_empty()
        );
        // A service it uses is not new.
        assert!(sweep(&mut state, 6, "ec2.amazonaws.com", "DescribeVpcs").is_empty());
        // The third within 15 minutes: one record, on it.
        let out = sweep(&mut state, 9, "logs.amazonaws.com", "DescribeLogGroups");
        assert_eq!(
            types(&out),
            [
                (
                    "PrincipalFirstSeenInsight".into(),
                    InsightState::Start,
                    "DescribeLogGroups".into()
                ),
                (
                    "PrincipalFirstSeenInsight".into(),
                    InsightState::End,
                    "DescribeLogGroups".into()
                ),
            ]
        );
        assert_eq!(
            out[0]
                .insight_details
                .insight_context
                .principal
                .as_ref()
                .and_then(|p| p.first_seen.clone()),
            Some(FIRST_SEEN_SERVICES.into())
        );
        // The sweep starts again: the next new service alone is no record.
        assert!(sweep(&mut state, 10, "dynamodb.amazonaws.com", "ListTables").is_empty());

        // New services spread out (more than 15 minutes from first to third) are not a sweep.
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        assert!(sweep(&mut state, 0, "s3.amazonaws.com", "ListBuckets").is_empty());
        assert!(
            sweep(
                &mut state,
                8,
                "lambda.amazonaws.com",
                "ListFunctions20150331"
            )
            .is_empty()
        );
        assert!(sweep(&mut state, 16, "logs.amazonaws.com", "DescribeLogGroups").is_empty());

        // A state saved before services were kept: its principals start their service history
        // now, so nothing is new until that history is warm.
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        for profile in state.principals.values_mut().flat_map(|p| p.values_mut()) {
            profile.services.clear();
            profile.services_from = None;
        }
        for (i, source) in ["s3", "lambda", "logs", "ec2"].iter().enumerate() {
            let source = format!("{source}.amazonaws.com");
            assert!(sweep(&mut state, i as Minute, &source, "ListX").is_empty());
        }
    }

    #[test]
    fn a_young_principal_or_a_young_series_reports_no_spike() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 2); // alice is 2 days old
        let burst = key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeInstances");
        let out = state.evaluate_minute(
            &config,
            T0 + 2 * DAY + 30,
            &HashMap::from([(burst, cell(40, ALICE))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));
        // A warm principal's burst on an API it never called (a series a minute old): no
        // spike (first-seen judges it, and DescribeSubnets is not sensitive).
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let new_api = key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeSubnets");
        let out = state.evaluate_minute(
            &config,
            T0 + 4 * DAY + 30,
            &HashMap::from([(new_api, cell(40, ALICE))]),
        );
        assert!(out.is_empty(), "{:?}", types(&out));
    }

    /// The schema's `required`, `const`, `enum`, `type`, `maxItems` and `items` (with its one
    /// `$ref`), checked by hand: no JSON Schema crate is in the workspace, and these are what
    /// consumers rely on.
    fn check(
        schema: &serde_json::Value,
        root: &serde_json::Value,
        value: &serde_json::Value,
        path: &str,
    ) {
        use serde_json::Value;
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.trim_start_matches("#/$defs/");
                &root["$defs"][name]
            }
            None => schema,
        };
        if let Some(kind) = schema.get("type").and_then(Value::as_str) {
            let ok = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "number" => value.is_number(),
                "integer" => value.is_i64() || value.is_u64(),
                _ => true,
            };
            assert!(ok, "{path}: not {kind}: {value}");
        }
        if let Some(expected) = schema.get("const") {
            assert_eq!(value, expected, "{path}");
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            assert!(
                allowed.contains(value),
                "{path}: {value} not in {allowed:?}"
            );
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                assert!(value.get(name).is_some(), "{path}: {name} missing");
            }
        }
        if let (Some(properties), Some(object)) = (
            schema.get("properties").and_then(Value::as_object),
            value.as_object(),
        ) {
            for (name, property) in properties {
                if let Some(inner) = object.get(name) {
                    check(property, root, inner, &format!("{path}.{name}"));
                }
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                assert!(items.len() as u64 <= max, "{path}: {} items", items.len());
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, root, item, &format!("{path}[{i}]"));
                }
            }
        }
    }

    #[test]
    fn records_match_the_documented_schema() {
        let schema: serde_json::Value = serde_json::from_str(include_str!(
            "../../../docs/schema/principal-insight.schema.json"
        ))
        .unwrap();
        let config = config();
        let mut state = DetectorState::default();
        routine_with(&mut state, &config, 4, true);
        let now = T0 + 4 * DAY + 607;
        let mut records = Vec::new();
        // First seen: a sensitive API, a region.
        let cells = HashMap::from([
            (
                key(ALICE, "us-east-1", "kms.amazonaws.com", "Decrypt"),
                cell(1, ALICE),
            ),
            (
                key(ALICE, "sa-east-1", "ec2.amazonaws.com", "DescribeInstances"),
                cell(2, ALICE),
            ),
        ]);
        records.extend(state.evaluate_minute(&config, now, &cells));
        // A spike of one API and of the service, Start and End.
        let session = "arn:aws:sts::111122223333:assumed-role/Admin/alice";
        // The service-wide burst spreads over three APIs (one alone would be that API's).
        let mut ec2 = cell(60, session);
        ec2.errors = TopK::default();
        ec2.errors.add("DescribeInstances", 30);
        ec2.errors.add("DescribeVpcs", 15);
        ec2.errors.add("DescribeSubnets", 15);
        let cells = HashMap::from([
            (
                key(ALICE, "us-east-1", "ec2.amazonaws.com", "DescribeInstances"),
                cell(30, session),
            ),
            (
                key(ALICE, "us-east-1", "ec2.amazonaws.com", SERVICE_WIDE),
                ec2,
            ),
        ]);
        records.extend(state.evaluate_minute(&config, now + 60, &cells));
        for minute in now + 61..now + 90 {
            records.extend(state.evaluate_minute(&config, minute, &HashMap::new()));
        }
        let kinds: BTreeSet<(String, String)> = records
            .iter()
            .map(|r| {
                let p = r
                    .insight_details
                    .insight_context
                    .principal
                    .as_ref()
                    .unwrap();
                (
                    r.insight_details.insight_type.as_str().to_owned(),
                    p.scope.clone(),
                )
            })
            .collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(records.len() >= 8, "{:?}", types(&records));
        for record in &records {
            let value = serde_json::to_value(record).unwrap();
            check(&schema, &schema, &value, "record");
        }
        // A service-wide record names the top API, and lists the APIs as an attribution.
        let service = records
            .iter()
            .find(|r| {
                r.insight_details
                    .insight_context
                    .principal
                    .as_ref()
                    .unwrap()
                    .scope
                    == "service"
            })
            .unwrap();
        assert_eq!(service.insight_details.event_name, "DescribeInstances");
        assert_eq!(
            service.insight_details.insight_context.attributions[2].attribute,
            "eventName"
        );
        assert_eq!(
            service.insight_details.insight_context.attributions[0].insight[0].value,
            session
        );
    }

    #[test]
    fn a_burst_no_larger_than_the_principals_usual_sessions_is_no_insight() {
        // Alice's console sessions move from service to service: 30 calls a minute on one API
        // on day 3, on another on day 4. Day 5's 30 on a third API (a series older than a day)
        // is her usual session (up to half again as large, 45); 90 is not.
        let config = config();
        let mut state = DetectorState::default();
        let api = |name: &str| key(ALICE, "us-east-1", "ec2.amazonaws.com", name);
        for minute in T0..T0 + 5 * DAY {
            let mut cells = HashMap::new();
            if minute % 60 == 7 {
                for name in ["DescribeInstances", "DescribeVpcs", "DescribeSubnets"] {
                    cells.insert(api(name), cell(1, ALICE));
                }
            }
            if minute == T0 + 3 * DAY + 600 {
                cells.insert(api("DescribeInstances"), cell(30, ALICE));
            }
            if minute == T0 + 4 * DAY + 600 {
                cells.insert(api("DescribeVpcs"), cell(30, ALICE));
            }
            state.evaluate_minute(&config, minute, &cells);
        }
        let burst = |state: &mut DetectorState, minute: Minute, n: u64| {
            let cells = HashMap::from([(api("DescribeSubnets"), cell(n, ALICE))]);
            state.evaluate_minute(&config, minute, &cells)
        };
        let mut usual = state.clone();
        assert!(burst(&mut usual, T0 + 5 * DAY + 600, 45).is_empty());
        let out = burst(&mut state, T0 + 5 * DAY + 600, 90);
        assert_eq!(
            types(&out),
            [(
                "PrincipalApiCallRateInsight".into(),
                InsightState::Start,
                "DescribeSubnets".into()
            )]
        );
    }

    #[test]
    fn a_first_sensitive_api_of_a_service_the_principal_already_uses_so_is_no_insight() {
        let config = config();
        let mut state = DetectorState::default();
        routine(&mut state, &config, 4);
        let iam = |name: &str| key(ALICE, "us-east-1", "iam.amazonaws.com", name);
        let now = T0 + 4 * DAY + 30;
        let first = state.evaluate_minute(
            &config,
            now,
            &HashMap::from([(iam("AttachRolePolicy"), cell(1, ALICE))]),
        );
        assert_eq!(first.len(), 2, "{:?}", types(&first));
        // Her next sensitive IAM API widens a routine she has: no insight.
        let next = state.evaluate_minute(
            &config,
            now + 60,
            &HashMap::from([(iam("CreateUser"), cell(1, ALICE))]),
        );
        assert!(next.is_empty(), "{:?}", types(&next));
    }
}
