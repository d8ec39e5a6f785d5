//! Region codes: the national 12-digit statistical division code (统计用区划代码) —
//! 2 digits province, 2 city, 2 county, 3 township, 3 village/community — and below a
//! community, grids (网格) numbered `<community code>-<n>`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a region sits in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    /// 市
    City,
    /// 县（市、区）
    County,
    /// 乡镇（街道）
    Township,
    /// 村（社区）
    Community,
    /// 网格
    Grid,
}

/// Why a region code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error(
        "must be a 12-digit division code such as 620802000000, or a grid code such as 620802001001-3"
    )]
    Format,
    #[error("a province code ({0}) is above the city level this registry keeps")]
    Province(String),
}

/// A parsed, valid region code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionCode<'a> {
    pub code: &'a str,
    pub level: RegionLevel,
}

impl<'a> RegionCode<'a> {
    pub fn parse(code: &'a str) -> Result<Self, CodeError> {
        let (base, grid) = match code.split_once('-') {
            Some((base, n)) => {
                let ok = !n.is_empty()
                    && n.len() <= 4
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && !n.starts_with('0');
                if !ok {
                    return Err(CodeError::Format);
                }
                (base, true)
            }
            None => (code, false),
        };
        if base.len() != 12 || !base.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::Format);
        }
        let zero = |r: std::ops::Range<usize>| base[r].bytes().all(|b| b == b'0');
        let level = if zero(2..12) {
            return Err(CodeError::Province(code.to_owned()));
        } else if zero(4..12) {
            RegionLevel::City
        } else if zero(6..12) {
            RegionLevel::County
        } else if zero(9..12) {
            RegionLevel::Township
        } else {
            RegionLevel::Community
        };
        if grid {
            if level != RegionLevel::Community {
                return Err(CodeError::Format);
            }
            return Ok(Self {
                code,
                level: RegionLevel::Grid,
            });
        }
        Ok(Self { code, level })
    }

    /// The code of the region directly above, if any (a city has none here).
    pub fn parent(&self) -> Option<String> {
        let c = self.code;
        match self.level {
            RegionLevel::City => None,
            RegionLevel::County => Some(format!("{}00000000", &c[..4])),
            RegionLevel::Township => Some(format!("{}000000", &c[..6])),
            RegionLevel::Community => Some(format!("{}000", &c[..9])),
            RegionLevel::Grid => c.split_once('-').map(|(b, _)| b.to_owned()),
        }
    }

    /// The prefix every code in this region's subtree starts with.
    pub fn subtree_prefix(&self) -> &'a str {
        let c = self.code;
        match self.level {
            RegionLevel::City => &c[..4],
            RegionLevel::County => &c[..6],
            RegionLevel::Township => &c[..9],
            RegionLevel::Community | RegionLevel::Grid => c,
        }
    }

    /// Whether `other` lies in this region's subtree (itself included).
    pub fn contains(&self, other: &str) -> bool {
        match self.level {
            // `620802001002-1` is not a prefix-parent of `620802001002-12`.
            RegionLevel::Grid => other == self.code,
            _ => other.starts_with(self.subtree_prefix()),
        }
    }
}

/// The prefix of the subtree of `code`, or `None` when the code is not valid.
pub fn subtree_prefix(code: &str) -> Option<&str> {
    RegionCode::parse(code).ok().map(|c| c.subtree_prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(code: &str) -> Result<RegionLevel, CodeError> {
        RegionCode::parse(code).map(|c| c.level)
    }

    #[test]
    fn levels_follow_the_code() {
        assert_eq!(level("620800000000"), Ok(RegionLevel::City));
        assert_eq!(level("620802000000"), Ok(RegionLevel::County));
        assert_eq!(level("620802001000"), Ok(RegionLevel::Township));
        assert_eq!(level("620802001002"), Ok(RegionLevel::Community));
        assert_eq!(level("620802001002-12"), Ok(RegionLevel::Grid));
        assert!(matches!(level("620000000000"), Err(CodeError::Province(_))));
        assert_eq!(level("62080200100"), Err(CodeError::Format));
        assert_eq!(level("620802001000-1"), Err(CodeError::Format));
        assert_eq!(level("620802001002-01"), Err(CodeError::Format));
    }

    #[test]
    fn parents_and_subtrees() {
        let c = RegionCode::parse("620802001002").ok();
        assert_eq!(
            c.as_ref().and_then(|c| c.parent()).as_deref(),
            Some("620802001000")
        );
        let county = RegionCode::parse("620802000000").ok();
        assert_eq!(county.as_ref().map(|c| c.subtree_prefix()), Some("620802"));
        assert!(
            county
                .as_ref()
                .is_some_and(|c| c.contains("620802001002-1"))
        );
        assert!(!county.as_ref().is_some_and(|c| c.contains("620821001002")));
        let grid = RegionCode::parse("620802001002-3").ok();
        assert!(!grid.as_ref().is_some_and(|g| g.contains("620802001002-31")));
        assert_eq!(
            grid.and_then(|g| g.parent()).as_deref(),
            Some("620802001002")
        );
    }
}
