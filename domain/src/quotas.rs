//! What each plan allows. Quotas that span aggregates (workflows, API keys) are enforced by the
//! command handlers with these numbers; the member quota is enforced by the workspace itself.

use event_schemas::types::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub max_members: usize,
    pub max_workflows: usize,
    pub max_api_keys: usize,
}

pub fn quotas(plan: Plan) -> Quotas {
    match plan {
        Plan::Free => Quotas { max_members: 5, max_workflows: 20, max_api_keys: 10 },
        Plan::Pro => Quotas { max_members: 100, max_workflows: 1_000, max_api_keys: 100 },
        Plan::Enterprise => Quotas { max_members: 10_000, max_workflows: 100_000, max_api_keys: 10_000 },
    }
}
