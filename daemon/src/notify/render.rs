//! What a message says: the signed webhook's JSON (typed, versioned) and the robots' short
//! Chinese markdown, made from the same event.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::schedule::{Event, EventData, EventKind, Task};
use crate::task::{Names, Priority, Reason, TaskStatus};

/// The payload version: a field is added within a version, never renamed or removed.
pub const VERSION: u32 = 1;
/// WeCom's documented limit for a markdown message's content, in bytes.
pub const WECOM_MAX_BYTES: usize = 4096;
/// What linli sends a DingTalk robot at most, in bytes (well inside its limit).
pub const DINGTALK_MAX_BYTES: usize = 5000;

/// A webhook's body (Standard Webhooks: `type`, `timestamp`, `data`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    /// The event kind (`task.unstaffed`).
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The payload version (1).
    pub version: u32,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    pub data: NotificationData,
}

/// What happened, as much as the receiving station's scope allows (never a resident ID or a
/// phone number).
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationData {
    /// The outbox sequence number (0 for a test message).
    pub event: u64,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duty: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Kind-specific: `offered`, `volunteer`, `unstaffed` or `tasks` (the digest, only the
    /// receiving station's communities).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<EventData>,
}

/// The task an event is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskSummary {
    pub id: u64,
    pub kind: String,
    pub title: Names,
    pub community: String,
    pub community_name: String,
    pub priority: Priority,
    pub status: TaskStatus,
    pub due_start: DateTime<FixedOffset>,
    pub due_end: DateTime<FixedOffset>,
    /// The task in the console, when `[notify] public_base_url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Everything a rendering needs besides the event.
pub struct Context<'a> {
    pub task: Option<&'a Task>,
    /// A community code's name.
    pub name: &'a dyn Fn(&str) -> String,
    pub base_url: Option<&'a str>,
}

fn task_url(base: Option<&str>, id: u64) -> Option<String> {
    base.map(|b| format!("{}/tasks/{id}", b.trim_end_matches('/')))
}

/// The webhook body.
pub fn webhook(event: &Event, cx: &Context<'_>) -> String {
    let n = Notification {
        kind: event.kind,
        version: VERSION,
        timestamp: event.at,
        data: NotificationData {
            event: event.seq,
            detail: event.detail.clone(),
            task: cx.task.map(|t| TaskSummary {
                id: t.id,
                kind: t.kind.clone(),
                title: t.title.clone(),
                community: t.community.clone(),
                community_name: (cx.name)(&t.community),
                priority: t.priority,
                status: t.status,
                due_start: t.due_start,
                due_end: t.due_end,
                url: task_url(cx.base_url, t.id),
            }),
            duty: event.duty,
            region: event.region.clone(),
            extra: event.data.clone(),
        },
    };
    serde_json::to_string(&n).unwrap_or_else(|_| "{}".into())
}

fn headline(kind: EventKind) -> &'static str {
    match kind {
        EventKind::OccurrenceTasks => "新任务已生成",
        EventKind::OccurrenceFailed => "⚠️ 任务生成失败",
        EventKind::TaskCreated => "新建临时任务（接诉即办）",
        EventKind::TaskOffered => "任务已派单",
        EventKind::TaskAccepted => "志愿者已接单",
        EventKind::TaskDeclined => "志愿者婉拒了任务",
        EventKind::TaskExpired => "派单超时未答复",
        EventKind::TaskUnstaffed => "⚠️ 任务无人可派",
        EventKind::TaskOverdue => "⚠️ 任务已逾期",
        EventKind::TaskCheckedIn => "志愿者已签到",
        EventKind::TaskCheckedOut => "志愿者已签退",
        EventKind::TaskCancelled => "任务已取消",
        EventKind::ReportAccepted => "探访记录已通过，任务完成",
        EventKind::ReportRejected => "探访记录被退回，请志愿者修改",
        EventKind::ReviewFollowUp => "需要跟进",
        EventKind::EndpointTest => "测试消息",
    }
}

fn priority_zh(p: Priority) -> &'static str {
    match p {
        Priority::Urgent => "紧急",
        Priority::High => "高",
        Priority::Normal => "普通",
        Priority::Low => "低",
    }
}

fn reason_zh(r: &Reason) -> String {
    match r {
        Reason::NoVolunteers => "本站及邻站没有志愿者".into(),
        Reason::OtherStation => "志愿者不属于本站或邻站".into(),
        Reason::MissingSkill { skill } => format!("缺少技能 {skill}"),
        Reason::ExpiredCertificate { skill } => format!("{skill} 证书过期"),
        Reason::MissingClearance { clearance } => format!("缺少 {clearance}"),
        Reason::NotAvailable => "时间不合".into(),
        Reason::TooFar { max_km } => format!("超过 {max_km} 公里"),
        Reason::WrongGender => "性别不符".into(),
        Reason::NoLanguage => "语言不通".into(),
        Reason::MissingRole { role } => format!("缺少角色 {role}"),
        Reason::AtCapacity => "志愿者本月已满额".into(),
        Reason::TakenByOtherTasks => "已被更优先的任务占用".into(),
        Reason::TeamIncomplete { .. } => "人数不足以组队".into(),
    }
}

/// Text from people (titles, reasons, details) made inert in markdown: no links, mentions,
/// headings or emphasis of its own, one line.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '[' => out.push('【'),
            ']' => out.push('】'),
            '(' => out.push('（'),
            ')' => out.push('）'),
            '<' => out.push('‹'),
            '>' => out.push('›'),
            '*' | '_' | '#' | '`' | '~' | '|' | '!' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Short Chinese markdown for a robot, at most `max` bytes.
pub fn markdown(event: &Event, cx: &Context<'_>, max: usize) -> (String, String) {
    let title = headline(event.kind).to_owned();
    let mut md = format!("### {title}\n");
    if let Some(t) = cx.task {
        md.push_str(&format!(
            "> **{}** · {}\n> 优先级：{} · 截止：{}\n",
            plain(&t.title.zh),
            plain(&(cx.name)(&t.community)),
            priority_zh(t.priority),
            t.due_end.format("%m-%d %H:%M"),
        ));
    }
    match &event.data {
        Some(EventData::Offered {
            volunteers,
            deadline,
        }) => md.push_str(&format!(
            "> 志愿者 {} · 请于 {} 前答复\n",
            volunteers
                .iter()
                .map(|v| format!("#{v}"))
                .collect::<Vec<_>>()
                .join("、"),
            deadline
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%m-%d %H:%M")
        )),
        Some(EventData::Volunteer { volunteer, reason }) => {
            md.push_str(&format!("> 志愿者 #{volunteer}"));
            if let Some(r) = reason {
                md.push_str(&format!("：{}", plain(r)));
            }
            md.push('\n');
        }
        Some(EventData::Unstaffed { reasons }) => {
            let why: Vec<String> = reasons
                .iter()
                .map(|r| {
                    if r.volunteers > 0 {
                        format!("{}（{} 人）", reason_zh(&r.reason), r.volunteers)
                    } else {
                        reason_zh(&r.reason)
                    }
                })
                .collect();
            md.push_str(&format!("> 原因：{}\n", why.join("；")));
        }
        Some(EventData::Review {
            report,
            severity,
            reasons,
            follow_up_task,
        }) => {
            if let Some(s) = severity {
                md.push_str(match s {
                    crate::task::Severity::Urgent => "> 🔴 **紧急：当天处理**\n",
                    crate::task::Severity::Routine => "> 一周内处理\n",
                });
            }
            for r in reasons.iter().take(8) {
                md.push_str(&format!("- {}\n", plain(r)));
            }
            md.push_str(&format!("> 探访记录 #{report}"));
            if let Some(t) = follow_up_task {
                md.push_str(&format!(" · 跟进任务 #{t}"));
            }
            md.push('\n');
        }
        Some(EventData::Tasks { communities, .. }) => {
            let total: usize = communities.iter().map(|c| c.tasks.len()).sum();
            md.push_str(&format!("> 共 {total} 项\n"));
            for c in communities {
                let kinds: Vec<String> = c.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                md.push_str(&format!(
                    "- {}：{}\n",
                    (cx.name)(&c.community),
                    kinds.join("，")
                ));
            }
        }
        None => {}
    }
    if cx.task.is_none() || event.data.is_none() {
        md.push_str(&format!("> {}\n", plain(&event.detail)));
    }
    // The link goes last and is never cut: the text before it gives way.
    let link = cx
        .task
        .and_then(|t| task_url(cx.base_url, t.id))
        .map(|url| format!("\n[在控制台查看]({url})"))
        .unwrap_or_default();
    let md = cap(md, max.saturating_sub(link.len()));
    (title, md + &link)
}

/// `s` cut to at most `max` bytes, never inside a character, marked with "…".
pub fn cap(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub("…".len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The body for a WeCom robot.
pub fn wecom(event: &Event, cx: &Context<'_>) -> String {
    let (_, md) = markdown(event, cx, WECOM_MAX_BYTES);
    serde_json::json!({"msgtype": "markdown", "markdown": {"content": md}}).to_string()
}

/// The body for a DingTalk robot.
pub fn dingtalk(event: &Event, cx: &Context<'_>) -> String {
    let (title, md) = markdown(event, cx, DINGTALK_MAX_BYTES);
    serde_json::json!({"msgtype": "markdown", "markdown": {"title": title, "text": md}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_people_cannot_make_links_or_mentions() {
        let p = plain("[点此处理](https://phish.example) <@all>\n### 紧急 **x**");
        assert!(!p.contains('[') && !p.contains('(') && !p.contains('<'));
        assert!(!p.contains('\n') && !p.contains('#') && !p.contains('*'));
        assert!(p.contains("点此处理"));
    }

    #[test]
    fn caps_never_split_a_character() {
        let s = "邻里".repeat(3000);
        let c = cap(s, WECOM_MAX_BYTES);
        assert!(c.len() <= WECOM_MAX_BYTES);
        assert!(c.ends_with('…'));
        assert_eq!(cap("短".into(), 10), "短");
    }
}
