//! Who can do what, for Kubernetes workloads: access analysis over a [`Snapshot`] of IAM and
//! EKS state, asking the policy engine itself (the same requests STS and the server ask), not
//! a second set of rules.
//!
//! * [`who`]: every workload identity that can perform an action on a resource, by path
//!   (Pod Identity, IRSA, the node's role), with `Allow`, `ConditionalAllow` (the conditions
//!   still open) or `ExplicitDeny` (the denying statement).
//! * [`what`]: the roles a service account can get, the one its SDK takes, and what each may
//!   do, by service.
//! * [`findings`]: problems, each with a stable code, a severity, the object and a fix.
//! * [`graph`]: service accounts → roles → services and resources, for the console;
//!   [`assumers`]: who can assume one role.
//!
//! Pure: no I/O, no clock (the snapshot carries the instant), no panics.

mod findings;
mod graph;
mod paths;
mod snapshot;
mod verdict;
mod what;
mod who;

pub use findings::{Finding, FindingsOptions, Severity, findings};
pub use graph::{AccessGraph, Assumer, GrantEdge, ResourceNode, RoleEdge, assumers, graph};
pub use paths::{PathKind, Workload};
pub use snapshot::{RoleVisible, Snapshot};
pub use verdict::{Denial, OpenCondition, Outcome, Verdict};
pub use what::{ServiceSummary, StatementSummary, WhatPath, WhatReport, summarise, what};
pub use who::{WhoEntry, WhoReport, who};
