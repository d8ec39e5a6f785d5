//! Certificates of volunteer service (志愿服务证明): issued free by the recording station, stating
//! hours, content, the recording unit and the period; printable on A4 with a QR code of the
//! verification address; verifiable by anyone with the code.
//!
//! Codes are 128 random bits (26 characters of base32) naming a record kept here — not a
//! signature. A server-side record can be revoked and shows exactly what was issued, and
//! verifying needs this server anyway (the QR code points at it), so a signature would add a
//! key to guard and rotate without letting anyone verify offline. Guessing a code means
//! guessing 128 bits; a changed code names no record.

use chrono::NaiveDate;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rand::RngCore;

use super::hours::{covered, totals};
use super::model::{Certificate, CertificateRequest, PublicCertificate, Verification};
use super::service::{Records, conflict};
use crate::registry::Invalid;
use crate::service::{Guard, ServiceError, not_found};

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new verification code: 128 random bits as 26 base32 characters.
fn new_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut out = String::with_capacity(26);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether `code` looks like a code (so junk never reaches the store).
pub fn plausible_code(code: &str) -> bool {
    code.len() == 26 && code.bytes().all(|b| BASE32.contains(&b))
}

impl Records {
    /// Issues a certificate for a volunteer's recorded service in a period (default: all of it
    /// up to today). `guard` is `None` when the volunteer asks for their own.
    pub fn issue_certificate(
        &self,
        volunteer: u64,
        req: CertificateRequest,
        guard: Option<&dyn Guard>,
        by: &str,
    ) -> Result<Certificate, ServiceError> {
        let now = self.now();
        let today = crate::clock::local_date(now);
        let to = req.to.unwrap_or(today);
        let from = req
            .from
            .unwrap_or(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(today));
        let mut errs = Invalid::default();
        if to > today {
            errs.push("to", "is in the future");
        }
        if from > to {
            errs.push("from", "must not be after to");
        }
        errs.into_result()?;
        // Totals from one snapshot; the certificate states what was recorded then.
        let cert = self.store.read(|w| {
            let v = covered(w, volunteer, guard)?;
            let (hours, records) = totals(w, volunteer, Some((from, to)))?;
            if records.is_empty() {
                return Err(conflict(
                    "period",
                    "there is no recorded service in this period to certify",
                ));
            }
            let unit = w.station(v.station)?.map_or_else(String::new, |s| s.name);
            let mut by_activity: Vec<(String, u32)> = Vec::new();
            for r in &records {
                match by_activity.iter_mut().find(|(a, _)| *a == r.activity) {
                    Some(slot) => slot.1 += 1,
                    None => by_activity.push((r.activity.clone(), 1)),
                }
            }
            by_activity.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut content: Vec<String> = by_activity
                .iter()
                .take(8)
                .map(|(a, n)| format!("{a} ×{n}"))
                .collect();
            if by_activity.len() > 8 {
                content.push(format!("等 {} 类服务", by_activity.len()));
            }
            let first = records.iter().map(|r| r.date).min().unwrap_or(from);
            let last = records.iter().map(|r| r.date).max().unwrap_or(to);
            let cert = Certificate {
                code: new_code(),
                volunteer,
                name: v.name,
                from: if req.from.is_some() { from } else { first },
                to: if req.to.is_some() { to } else { last },
                hours: hours.hours,
                records: hours.records,
                content,
                unit,
                issued_at: now,
                issued_by: by.to_owned(),
                revoked_at: None,
            };
            Ok::<_, ServiceError>(cert)
        })?;
        self.store.write(|w| w.put_certificate(&cert))?;
        Ok(cert)
    }

    /// A volunteer's certificates, newest first.
    pub fn certificates_of(
        &self,
        volunteer: u64,
        guard: Option<&dyn Guard>,
    ) -> Result<Vec<Certificate>, ServiceError> {
        self.store.read(|r| {
            covered(r, volunteer, guard)?;
            Ok(r.certificates_of(volunteer)?)
        })
    }

    /// Verifies a code (public): the certificate as issued, and whether it still stands.
    pub fn verify(&self, code: &str) -> Result<Verification, ServiceError> {
        let code = code.trim().to_ascii_uppercase();
        if !plausible_code(&code) {
            return Err(not_found("certificate", "with this code"));
        }
        let cert = self
            .store
            .read(|r| r.certificate(&code))?
            .ok_or_else(|| not_found("certificate", "with this code"))?;
        Ok(Verification {
            status: if cert.revoked_at.is_some() {
                "revoked".into()
            } else {
                "valid".into()
            },
            certificate: PublicCertificate::from(&cert),
        })
    }

    /// Revokes a certificate (a station that covers the volunteer).
    pub fn revoke_certificate(
        &self,
        code: &str,
        guard: &dyn Guard,
    ) -> Result<Certificate, ServiceError> {
        let now = self.now();
        self.store.read(|r| {
            let cert = r
                .certificate(code)?
                .ok_or_else(|| not_found("certificate", code))?;
            covered(r, cert.volunteer, Some(guard)).map_err(|_| not_found("certificate", code))
        })?;
        self.store.write(|w| {
            let mut cert = w
                .certificate(code)?
                .ok_or_else(|| not_found("certificate", code))?;
            if cert.revoked_at.is_none() {
                cert.revoked_at = Some(now);
                w.put_certificate(&cert)?;
            }
            Ok(cert)
        })
    }

    /// The address a certificate's QR code points at.
    pub fn verify_url(&self, code: &str) -> String {
        format!("{}/verify/{code}", self.base_url)
    }
}

/// The QR code of `text` as an SVG element (`None` if the text is too long for a QR code).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build(),
    )
}

const PAGE_CSS: &str = r#"
@page { size: A4; margin: 20mm; }
body { font-family: "Noto Serif CJK SC", "Source Han Serif SC", "SimSun", serif; color: #111; margin: 0; }
.sheet { width: 170mm; min-height: 250mm; margin: 0 auto; padding: 10mm 0; }
h1 { text-align: center; font-size: 26pt; letter-spacing: 0.3em; margin: 8mm 0 2mm; }
.en { text-align: center; color: #555; font-size: 11pt; margin-bottom: 10mm; }
p.body { font-size: 14pt; line-height: 2; text-indent: 2em; }
table { width: 100%; border-collapse: collapse; font-size: 12pt; margin: 6mm 0; }
td, th { border: 1px solid #444; padding: 2mm 3mm; text-align: left; vertical-align: top; }
th { width: 32%; background: #f3f3f3; font-weight: normal; }
.foot { display: flex; justify-content: space-between; align-items: flex-end; margin-top: 12mm; }
.qr svg { width: 40mm; height: 40mm; }
.small { font-size: 9pt; color: #555; word-break: break-all; }
.revoked { color: #b00; font-weight: bold; font-size: 16pt; text-align: center; border: 2px solid #b00; padding: 3mm; }
.ok { color: #070; font-weight: bold; font-size: 16pt; }
@media print { .noprint { display: none; } }
@media screen and (max-width: 700px) {
  .sheet { width: auto; min-height: 0; padding: 4mm; }
  h1 { font-size: 18pt; letter-spacing: 0.15em; }
  p.body { font-size: 12pt; line-height: 1.8; }
  table { font-size: 11pt; }
  .foot { flex-direction: column; align-items: flex-start; gap: 4mm; }
}
"#;

/// Hours as the JSON states them (up to two decimals, no trailing zeros): 0.75, 5, 12.5.
fn hours_text(h: f64) -> String {
    let s = format!("{:.2}", (h * 100.0).round() / 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The printable A4 certificate.
pub fn certificate_page(cert: &PublicCertificate, verify_url: &str) -> Markup {
    let qr = qr_svg(verify_url).unwrap_or_default();
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "志愿服务证明 " (cert.code) }
                style { (PreEscaped(PAGE_CSS)) }
            }
            body {
                div.sheet {
                    @if cert.revoked_at.is_some() {
                        div.revoked { "本证明已撤销 · This certificate has been revoked" }
                    }
                    h1 { "志愿服务证明" }
                    div.en { "Certificate of Volunteer Service" }
                    p.body {
                        "兹证明 " strong { (cert.name) } " 同志于 "
                        (cert.from.format("%Y年%m月%d日")) " 至 " (cert.to.format("%Y年%m月%d日"))
                        " 期间参加志愿服务，经本单位记录，累计服务时长 "
                        strong { (hours_text(cert.hours)) } " 小时（共 " (cert.records) " 次）。"
                    }
                    table {
                        tr { th { "志愿者 Volunteer" } td { (cert.name) } }
                        tr { th { "服务时段 Period" } td { (cert.from) " – " (cert.to) } }
                        tr { th { "服务时长 Hours" } td { (hours_text(cert.hours)) } }
                        tr { th { "服务内容 Service" } td {
                            @for c in &cert.content { div { (c) } }
                        } }
                        tr { th { "记录单位 Recording unit" } td { (cert.unit) } }
                        tr { th { "出具日期 Issued" } td { (crate::clock::local_date(cert.issued_at)) } }
                        tr { th { "验证码 Code" } td { code { (cert.code) } } }
                    }
                    p.small { "依据《志愿服务记录与证明出具办法（试行）》出具，免费。扫描二维码或访问下列网址核验。 Issued free of charge under the 2021 national rules; scan the code or visit the address below to verify." }
                    div.foot {
                        div {
                            div { "记录单位（盖章）：" (cert.unit) }
                            div.small { (verify_url) }
                        }
                        div.qr { (PreEscaped(qr)) }
                    }
                    p.noprint.small { "打印：Ctrl+P（A4）。Print with Ctrl+P on A4." }
                }
            }
        }
    }
}

/// The public verification page.
pub fn verification_page(v: Option<&Verification>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "志愿服务证明核验 · Verify a certificate" }
                style { (PreEscaped(PAGE_CSS)) }
            }
            body {
                div.sheet style="min-height: 0" {
                    h1 style="font-size: 18pt" { "志愿服务证明核验" }
                    div.en { "Verification of a certificate of volunteer service" }
                    @match v {
                        None => {
                            p.revoked { "未找到该证明 · No certificate has this code" }
                            p.small { "请核对二维码或网址是否完整。Check that the address is complete." }
                        }
                        Some(v) => {
                            @if v.status == "valid" {
                                p.ok { "✔ 证明有效 · Valid" }
                            } @else {
                                p.revoked { "✘ 证明已撤销 · Revoked" }
                            }
                            table {
                                tr { th { "志愿者 Volunteer" } td { (v.certificate.name) } }
                                tr { th { "服务时段 Period" } td { (v.certificate.from) " – " (v.certificate.to) } }
                                tr { th { "服务时长 Hours" } td { (hours_text(v.certificate.hours)) } }
                                tr { th { "服务内容 Service" } td {
                                    @for c in &v.certificate.content { div { (c) } }
                                } }
                                tr { th { "记录单位 Recording unit" } td { (v.certificate.unit) } }
                                tr { th { "出具日期 Issued" } td { (crate::clock::local_date(v.certificate.issued_at)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_26_base32_characters_and_differ() {
        let a = new_code();
        let b = new_code();
        assert_eq!(a.len(), 26);
        assert!(plausible_code(&a) && plausible_code(&b));
        assert_ne!(a, b);
        assert!(!plausible_code("abc"));
        assert!(!plausible_code(&a.to_lowercase()));
        assert!(qr_svg("https://linli.example.gov.cn/verify/ABCDEFGHIJKLMNOPQRSTUVWXYZ").is_some());
    }
}
