//! Statutory clocks: deadlines that identification decisions start, as configured
//! per deployment (`intake.clocks`).

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use haven_config::ClockRule;
use haven_proto::intake::v1 as pb;

use crate::domain::IdentificationStage;

/// A clock of one screening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// Id.
    pub id: Uuid,
    /// The screening whose decision started it.
    pub screening_id: Uuid,
    /// The screening's organisation.
    pub organization_id: Uuid,
    /// Code from the configuration.
    pub name: String,
    /// What must happen.
    pub description: String,
    /// When the starting decision was taken.
    pub started_at: OffsetDateTime,
    /// When the obligation falls due.
    pub due_at: OffsetDateTime,
    /// When it was met, if it was.
    pub completed_at: Option<OffsetDateTime>,
    /// Who recorded that it was met.
    pub completed_by: Option<String>,
    /// Position in creation order.
    pub position: i64,
}

/// Where a clock stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// Running, due later than the window.
    Open,
    /// Running, due within the window.
    DueSoon,
    /// Past due.
    Overdue,
    /// Met.
    Completed,
}

impl Clock {
    /// The state at `now`, with `window` as the due-soon horizon.
    pub fn state(&self, now: OffsetDateTime, window: Duration) -> ClockState {
        match self.completed_at {
            Some(_) => ClockState::Completed,
            None if self.due_at <= now => ClockState::Overdue,
            None if self.due_at <= now + window => ClockState::DueSoon,
            None => ClockState::Open,
        }
    }

    /// The wire form at `now`.
    pub fn to_proto(&self, now: OffsetDateTime, window: Duration) -> pb::StatutoryClock {
        let state = match self.state(now, window) {
            ClockState::Open => pb::ClockState::Open,
            ClockState::DueSoon => pb::ClockState::DueSoon,
            ClockState::Overdue => pb::ClockState::Overdue,
            ClockState::Completed => pb::ClockState::Completed,
        };
        pb::StatutoryClock {
            id: self.id.to_string(),
            screening_id: self.screening_id.to_string(),
            organization_id: self.organization_id.to_string(),
            name: self.name.clone(),
            description: self.description.clone(),
            started_at: Some(haven_proto::timestamp(self.started_at)),
            due_at: Some(haven_proto::timestamp(self.due_at)),
            completed_at: self.completed_at.map(haven_proto::timestamp),
            completed_by: self.completed_by.clone().unwrap_or_default(),
            state: state.into(),
        }
    }
}

/// The rules a decision at `stage` starts.
pub fn started_by(
    rules: &[ClockRule],
    stage: IdentificationStage,
) -> impl Iterator<Item = &ClockRule> {
    rules
        .iter()
        .filter(move |rule| rule.starts_at_stage == stage.as_str())
}

/// The due time of a rule started at `started_at`.
pub fn due_at(rule: &ClockRule, started_at: OffsetDateTime) -> OffsetDateTime {
    started_at + Duration::hours(i64::from(rule.due_after_hours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_due_time_and_completion() {
        let now = OffsetDateTime::now_utc();
        let mut clock = Clock {
            id: Uuid::nil(),
            screening_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            name: "police_referral".into(),
            description: String::new(),
            started_at: now - Duration::hours(30),
            due_at: now - Duration::hours(6),
            completed_at: None,
            completed_by: None,
            position: 1,
        };
        let day = Duration::hours(24);
        assert_eq!(clock.state(now, day), ClockState::Overdue);
        clock.due_at = now + Duration::hours(3);
        assert_eq!(clock.state(now, day), ClockState::DueSoon);
        clock.due_at = now + Duration::hours(48);
        assert_eq!(clock.state(now, day), ClockState::Open);
        clock.completed_at = Some(now);
        assert_eq!(clock.state(now, day), ClockState::Completed);
    }

    #[test]
    fn the_default_rules_start_at_their_stages() {
        let rules = haven_config::default_clocks();
        let names: Vec<&str> = started_by(&rules, IdentificationStage::PresumedVictim)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, vec!["police_referral"]);
        assert_eq!(
            started_by(&rules, IdentificationStage::Identified).count(),
            0
        );
    }
}
