//! Records: what visits and volunteering leave behind. So far the working-day calendar that
//! "working days" in the volunteer-record rules are counted by; visit reports, service
//! records, certificates, satisfaction and coverage come next (issue 13).

pub mod calendar;
