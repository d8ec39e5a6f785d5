//! Plugin records, their stored components and cached compiled artifacts.

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::tables::*;
use super::tx::{WriteTx, decode, encode, reads};

reads! {
    pub fn plugin<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StoreError> {
        let t = self.txn.open_table(PLUGINS)?;
        t.get(id)?
            .map(|v| decode("plugins", id, v.value()))
            .transpose()
    }

    /// Every plugin record.
    pub fn all_plugins<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        let t = self.txn.open_table(PLUGINS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(decode("plugins", k.value(), v.value())?);
        }
        Ok(out)
    }

    /// The bytes of one deployed plugin version.
    pub fn plugin_wasm(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(PLUGIN_WASM)?;
        Ok(t.get((id, version))?.map(|v| v.value().to_vec()))
    }

    /// A precompiled artifact of a component for an engine, if one was cached.
    pub fn plugin_compiled(
        &self,
        sha256: &str,
        engine: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(PLUGIN_COMPILED)?;
        Ok(t.get((sha256, engine))?.map(|v| v.value().to_vec()))
    }
}

impl WriteTx {
    pub fn put_plugin<T: Serialize>(&mut self, id: &str, record: &T) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGINS)?;
        t.insert(id, encode("plugins", record)?.as_slice())?;
        Ok(())
    }

    pub fn put_plugin_wasm(
        &mut self,
        id: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_WASM)?;
        t.insert((id, version), bytes)?;
        Ok(())
    }

    /// Forgets one stored version's bytes (retention).
    pub fn delete_plugin_wasm(&mut self, id: &str, version: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_WASM)?;
        t.remove((id, version))?;
        Ok(())
    }

    pub fn put_plugin_compiled(
        &mut self,
        sha256: &str,
        engine: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_COMPILED)?;
        t.insert((sha256, engine), artifact)?;
        Ok(())
    }

    /// Forgets every cached artifact of a component.
    pub fn delete_plugin_compiled(&mut self, sha256: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(PLUGIN_COMPILED)?;
        let mut keys: Vec<String> = Vec::new();
        for row in t.range((sha256, "")..)? {
            let (k, _) = row?;
            let (sha, engine) = k.value();
            if sha != sha256 {
                break;
            }
            keys.push(engine.to_owned());
        }
        for engine in keys {
            t.remove((sha256, engine.as_str()))?;
        }
        Ok(())
    }
}
