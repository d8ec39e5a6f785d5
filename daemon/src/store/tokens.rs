//! API tokens, keyed by the hash of the secret.

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;
use super::tx::{WriteTx, decode, encode, reads};

reads! {
    /// The volunteer whose calendar feed has this secret (by its SHA-256).
    pub fn calendar_owner(&self, hash: &str) -> Result<Option<u64>, StoreError> {
        let t = self.txn.open_table(CALENDARS)?;
        Ok(t.get(hash)?.map(|v| v.value()))
    }
}

impl WriteTx {
    /// Gives a volunteer a new calendar secret (by its hash), forgetting the old one.
    pub fn set_calendar(&mut self, volunteer: u64, new: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(CALENDARS)?;
        // The volunteer's earlier secrets stop working.
        let mut stale = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            if v.value() == volunteer {
                stale.push(k.value().to_owned());
            }
        }
        for k in stale {
            t.remove(k.as_str())?;
        }
        t.insert(new, volunteer)?;
        Ok(())
    }
}

reads! {
    /// Every token record with its hash.
    pub fn all_tokens<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, StoreError> {
        let t = self.txn.open_table(TOKENS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_owned(), decode("tokens", "(hash)", v.value())?));
        }
        Ok(out)
    }

    pub fn token<T: DeserializeOwned>(&self, hash: &str) -> Result<Option<T>, StoreError> {
        let t = self.txn.open_table(TOKENS)?;
        t.get(hash)?
            .map(|v| decode("tokens", "(hash)", v.value()))
            .transpose()
    }
}

impl WriteTx {
    pub fn put_token<T: Serialize>(&mut self, hash: &str, record: &T) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(TOKENS)?;
        t.insert(hash, encode("tokens", record)?.as_slice())?;
        Ok(())
    }
}
