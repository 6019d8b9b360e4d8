//! Fault injection: which notifications are dropped, sent twice, sent late, or joined by a
//! malformed body, and which go out in bursts. Planned up front from a seed, so that the
//! summary can say exactly what the listener could and could not have received.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The faults to inject, each as a rate (0 to 1) or a size.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Faults {
    /// The share of notifications sent a second time, a little later.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub duplicates: f64,
    /// The share of notifications sent later than their turn, by up to --reorder-window places.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub reorder: f64,
    /// How many places a reordered or duplicated notification may move.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub reorder_window: usize,
    /// The share of notifications never sent, as when a seller that does not retry gets an
    /// error.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub drops: f64,
    /// How many malformed bodies to mix in, per notification.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub malformed: f64,
    /// Every N deliveries, send the next --burst-size at once.
    #[arg(long, value_name = "N")]
    pub burst_every: Option<usize>,
    /// How many deliveries a burst sends at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub burst_size: usize,
}

/// One thing to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A notification (index into the events); `copy` 0 is the original, 1 the duplicate.
    Event {
        /// Which notification.
        index: usize,
        /// 0 for the first send, 1 for a duplicate.
        copy: u8,
    },
    /// A malformed body derived from this notification.
    Malformed {
        /// The notification it is derived from.
        index: usize,
        /// Which kind of damage.
        variant: usize,
    },
}

/// The whole plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Groups sent in order; a group of more than one is a burst, sent all at once.
    pub groups: Vec<Vec<Delivery>>,
    /// Notifications never sent.
    pub dropped: Vec<usize>,
    /// How many notifications were sent twice.
    pub duplicated: usize,
    /// How many were moved later.
    pub reordered: usize,
    /// How many malformed bodies were added.
    pub malformed: usize,
    /// How many bursts.
    pub bursts: usize,
}

impl Faults {
    /// Checks that rates are rates.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, rate) in [
            ("--duplicates", self.duplicates),
            ("--reorder", self.reorder),
            ("--drops", self.drops),
            ("--malformed", self.malformed),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                anyhow::bail!("{name} is a rate between 0 and 1, not {rate}");
            }
        }
        if self.burst_every == Some(0) {
            anyhow::bail!("--burst-every must be at least 1");
        }
        Ok(())
    }

    /// Plans the deliveries of `count` notifications, in their natural order.
    pub fn plan(&self, count: usize, seed: u64) -> Plan {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x000f_a017);
        let window = self.reorder_window.max(1);
        let mut plan = Plan::default();
        let mut sequence: Vec<Delivery> = Vec::with_capacity(count * 2);
        let mut moved: Vec<(usize, Delivery)> = Vec::new();
        for index in 0..count {
            if rng.random_bool(self.drops) {
                plan.dropped.push(index);
                continue;
            }
            let original = Delivery::Event { index, copy: 0 };
            if rng.random_bool(self.reorder) {
                moved.push((sequence.len() + rng.random_range(1..=window), original));
                plan.reordered += 1;
            } else {
                sequence.push(original);
            }
            if rng.random_bool(self.duplicates) {
                moved.push((
                    sequence.len() + rng.random_range(1..=window),
                    Delivery::Event { index, copy: 1 },
                ));
                plan.duplicated += 1;
            }
            if rng.random_bool(self.malformed) {
                sequence.push(Delivery::Malformed {
                    index,
                    variant: rng.random_range(0..5),
                });
                plan.malformed += 1;
            }
        }
        // Put the late ones in, from the back so that earlier positions stay valid.
        moved.sort_by_key(|(position, _)| *position);
        for (position, delivery) in moved.into_iter().rev() {
            sequence.insert(position.min(sequence.len()), delivery);
        }
        let mut deliveries = sequence.into_iter().peekable();
        let mut sent = 0;
        while deliveries.peek().is_some() {
            let burst_due = self
                .burst_every
                .is_some_and(|every| sent > 0 && sent % every == 0);
            if burst_due {
                let burst: Vec<Delivery> =
                    deliveries.by_ref().take(self.burst_size.max(1)).collect();
                sent += burst.len();
                plan.bursts += 1;
                plan.groups.push(burst);
                continue;
            }
            if let Some(delivery) = deliveries.next() {
                plan.groups.push(vec![delivery]);
                sent += 1;
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn originals(plan: &Plan) -> Vec<usize> {
        plan.groups
            .iter()
            .flatten()
            .filter_map(|delivery| match delivery {
                Delivery::Event { index, copy: 0 } => Some(*index),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn without_faults_everything_is_sent_once_in_order() {
        let plan = Faults {
            reorder_window: 8,
            burst_size: 32,
            ..Faults::default()
        }
        .plan(100, 1);
        assert_eq!(originals(&plan), (0..100).collect::<Vec<_>>());
        assert!(plan.groups.iter().all(|group| group.len() == 1));
    }

    #[test]
    fn every_notification_is_sent_or_dropped_and_duplicates_are_counted() {
        let faults = Faults {
            duplicates: 0.3,
            reorder: 0.3,
            reorder_window: 5,
            drops: 0.1,
            malformed: 0.1,
            burst_every: Some(20),
            burst_size: 10,
        };
        let plan = faults.plan(500, 42);
        let mut sent = originals(&plan);
        sent.extend(plan.dropped.iter().copied());
        sent.sort_unstable();
        assert_eq!(
            sent,
            (0..500).collect::<Vec<_>>(),
            "each is sent once or dropped"
        );
        let duplicates = plan
            .groups
            .iter()
            .flatten()
            .filter(|d| matches!(d, Delivery::Event { copy: 1, .. }))
            .count();
        assert_eq!(duplicates, plan.duplicated);
        assert!(plan.duplicated > 0 && plan.reordered > 0 && plan.malformed > 0 && plan.bursts > 0);
        assert_ne!(
            originals(&plan),
            {
                let mut sorted = originals(&plan);
                sorted.sort_unstable();
                sorted
            },
            "some were reordered"
        );
    }
}
