//! The console's records: staff accounts (by username), sessions and volunteers' one-time
//! login links (both by the SHA-256 of their secret; the secrets themselves are never stored).

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;
use super::tx::{WriteTx, decode, encode, reads};

/// The three console tables, each a JSON record under a text key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleTable {
    /// username → account
    Users,
    /// SHA-256 of the session secret → session
    Sessions,
    /// SHA-256 of the link's code → login link
    LoginLinks,
}

impl ConsoleTable {
    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            ConsoleTable::Users => CONSOLE_USERS,
            ConsoleTable::Sessions => CONSOLE_SESSIONS,
            ConsoleTable::LoginLinks => CONSOLE_LOGIN_LINKS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ConsoleTable::Users => "console_users",
            ConsoleTable::Sessions => "console_sessions",
            ConsoleTable::LoginLinks => "console_login_links",
        }
    }
}

reads! {
    /// One console record.
    pub fn console_get<T: DeserializeOwned>(
        &self,
        table: ConsoleTable,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let t = self.txn.open_table(table.def())?;
        t.get(key)?
            .map(|v| decode(table.name(), key, v.value()))
            .transpose()
    }

    /// Every record of a console table with its key, in key order.
    pub fn console_all<T: DeserializeOwned>(
        &self,
        table: ConsoleTable,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let t = self.txn.open_table(table.def())?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let key = k.value().to_owned();
            let record = decode(table.name(), &key, v.value())?;
            out.push((key, record));
        }
        Ok(out)
    }
}

impl WriteTx {
    pub fn console_put<T: Serialize>(
        &mut self,
        table: ConsoleTable,
        key: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(table.def())?;
        t.insert(key, encode(table.name(), record)?.as_slice())?;
        Ok(())
    }

    pub fn console_remove(&mut self, table: ConsoleTable, key: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(table.def())?;
        t.remove(key)?;
        Ok(())
    }
}
