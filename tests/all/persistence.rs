//! Restart keeps everything; a database file that is not linli's, is damaged, or comes from a
//! newer schema is refused with a clear error and no panic.

use reqwest::StatusCode;

use crate::harness::*;
use linli::store::{OpenError, OpenOptions, Store};

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_everything() {
    let d = Daemon::start().await;
    let w = world(&d).await;
    let v = d
        .created("/v1/volunteers", volunteer(w.stations[0], 1))
        .await;
    let station_token = d.token(&format!("station:{}", w.stations[0])).await;
    let person = d
        .get(&format!("/v1/persons/{}", w.persons[0]), &d.admin)
        .await
        .body;
    let dir = d.stop().await;

    let d = Daemon::start_in(dir).await;
    // Tokens made before the restart still work.
    let r = d
        .get(&format!("/v1/persons/{}", w.persons[0]), &station_token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, person);
    let r = d
        .get(&format!("/v1/volunteers/{}", v["id"]), &d.admin)
        .await;
    assert_eq!(r.body, v);
    // Ids keep counting where they stopped.
    let p = d.created("/v1/persons", elder("620802001001", 400)).await;
    assert!(p["id"].as_u64().unwrap() > w.persons[2]);
    d.stop().await;
}

fn open(path: &std::path::Path) -> Result<Store, OpenError> {
    Store::open(path, OpenOptions::default())
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linli.redb");
    std::fs::write(
        &path,
        b"name,resident_id\nthis is a CSV file, not a database\n",
    )
    .unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::NotADatabase { .. } | OpenError::Damaged { .. }
        ),
        "{err}"
    );
    // The file is left as it was.
    assert!(
        std::fs::read(&path)
            .unwrap()
            .starts_with(b"name,resident_id")
    );
}

#[test]
fn a_damaged_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linli.redb");
    {
        let store = open(&path).unwrap();
        let now = linli::clock::Clock::now(&linli::clock::SystemClock);
        linli::demo::seed(
            &store,
            now,
            linli::demo::Size {
                persons: 300,
                volunteers: 20,
            },
        )
        .unwrap();
    }
    // Overwrite a stretch in the middle of the file, where the tables' pages live.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 3 + 64 * 1024] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Damaged { .. } | OpenError::NotADatabase { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linli.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            t.insert("schema_version", 99).unwrap();
        }
        w.commit().unwrap();
    }
    let err = open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade linlid"));
}

#[test]
fn a_foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linli.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<u64, u64>::new("orders"))
                .unwrap();
            t.insert(1, 2).unwrap();
        }
        w.commit().unwrap();
    }
    let err = open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Foreign { .. }), "{err}");
}

/// A file from schema 1 (where `overdue` was a task status) opens under schema 2: each such task
/// becomes open with the overdue flag, its index entries follow, and nothing else changes.
#[test]
fn a_schema_1_file_with_overdue_tasks_is_migrated() {
    use linli::schedule::{Names, Priority, Requirements, Task, TaskStatus, TaskTarget};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linli.redb");
    drop(open(&path).unwrap());
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-01T09:00:00+08:00").unwrap();
    let task = Task {
        id: 7,
        duty: 1,
        scheduled_at: t.to_utc(),
        key: "person:1:visit".into(),
        target: TaskTarget::Person { id: 1 },
        community: "620802001001".into(),
        plugin: "steady".into(),
        action: "visit".into(),
        kind: "visit".into(),
        title: Names {
            zh: "探访".into(),
            en: "Visit".into(),
        },
        due_start: t,
        due_end: t,
        priority: Priority::Normal,
        requirements: Requirements {
            skills: vec![],
            clearances: vec![],
            team_size: 1,
            gender: None,
            max_distance_km: None,
            languages: vec![],
            roles: vec![],
        },
        checklist: 0,
        status: TaskStatus::Open,
        overdue: false,
        station: None,
        offers: vec![],
        unstaffed: vec![],
        history: vec![],
        report: None,
        follows_up: None,
        created_at: t.to_utc(),
        updated_at: t.to_utc(),
    };
    // Written as schema 1 wrote it: status "overdue", no flag, indexed under "overdue".
    let mut old = serde_json::to_value(&task).unwrap();
    old["status"] = "overdue".into();
    old.as_object_mut().unwrap().remove("overdue");
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut tasks = w
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("tasks"))
                .unwrap();
            tasks
                .insert(7, serde_json::to_vec(&old).unwrap().as_slice())
                .unwrap();
            let mut by_status = w
                .open_table(redb::TableDefinition::<(&str, u64), ()>::new(
                    "tasks_by_status",
                ))
                .unwrap();
            by_status.insert(("overdue", 7), ()).unwrap();
            let mut meta = w
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema_version", 1).unwrap();
        }
        w.commit().unwrap();
    }
    let store = open(&path).unwrap();
    let migrated = store.read(|r| r.task(7)).unwrap().unwrap();
    assert_eq!(migrated.status, TaskStatus::Open);
    assert!(migrated.overdue);
    assert_eq!(migrated.title.zh, "探访");
    let open_ids: Vec<u64> = store
        .read(|r| r.tasks_in_status(TaskStatus::Open, 0, 10, |_| true))
        .unwrap()
        .items
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(open_ids, [7]);
    assert_eq!(
        store.read(|r| r.meta("schema_version")).unwrap(),
        Some(linli::store::SCHEMA_VERSION)
    );
    // Opening again changes nothing more.
    drop(store);
    let again = open(&path).unwrap().read(|r| r.task(7)).unwrap().unwrap();
    assert_eq!(again, migrated);
}

/// An older file still (no status index at all): its overdue tasks are found and migrated too.
#[test]
fn a_file_older_than_the_status_index_is_migrated_too() {
    use linli::schedule::TaskStatus;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linli.redb");
    drop(open(&path).unwrap());
    let task = serde_json::json!({
        "id": 3, "duty": 1, "scheduled_at": "2026-11-01T01:00:00Z", "key": "k",
        "target": {"type": "person", "id": 1}, "community": "620802001001",
        "plugin": "steady", "action": "visit", "kind": "visit",
        "title": {"zh": "探访", "en": "Visit"},
        "due_start": "2026-11-01T09:00:00+08:00", "due_end": "2026-11-02T09:00:00+08:00",
        "priority": "normal",
        "requirements": {"skills": [], "clearances": [], "team_size": 1, "gender": null,
                         "max_distance_km": null, "languages": [], "roles": []},
        "checklist": 0, "status": "overdue",
        "created_at": "2026-11-01T01:00:00Z", "updated_at": "2026-11-01T01:00:00Z"
    });
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut tasks = w
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("tasks"))
                .unwrap();
            tasks
                .insert(3, serde_json::to_vec(&task).unwrap().as_slice())
                .unwrap();
        }
        w.delete_table(redb::TableDefinition::<(&str, u64), ()>::new(
            "tasks_by_status",
        ))
        .unwrap();
        {
            let mut meta = w
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema_version", 1).unwrap();
        }
        w.commit().unwrap();
    }
    let store = open(&path).unwrap();
    let t = store.read(|r| r.task(3)).unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Open);
    assert!(t.overdue, "the old overdue status became the flag");
}
