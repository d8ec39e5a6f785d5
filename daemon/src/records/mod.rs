//! Records: what visits and volunteering leave behind — visit reports reviewed by the action
//! plugin (`reports`), service records and hours (`hours`, 志愿服务记录), certificates anyone can
//! verify (`certificates`), satisfaction ratings (`ratings`), coverage against the plan's
//! targets (`coverage`), and the audit log of personal data (`audit`) — counted in working days
//! by the calendar (`calendar`) where the rules say so. `model` is the plain data; `service`
//! holds [`Records`], the one service the API calls.

pub mod audit;
pub mod calendar;
pub mod certificates;
pub mod coverage;
pub mod hours;
pub mod model;
pub mod ratings;
pub mod reports;
pub mod service;

pub use service::{Actor, Records};
