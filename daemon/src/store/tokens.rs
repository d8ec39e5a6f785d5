//! API tokens, keyed by the hash of the secret.

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;
use super::tx::{WriteTx, decode, encode, reads};

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
