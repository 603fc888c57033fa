//! The words of every message: built-in MiniJinja templates for each message
//! and locale, replaced file by file by the operator's
//! (`courier.templates_dir/<locale>/<message>.<part>`), and checked when
//! loaded so a template that cannot render stops the server at start, not a
//! mail at send time.

use std::path::Path;

use anyhow::Context;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::i18n::Locale;

/// Every message an operator can replace (SPEC §5.2).
pub const MESSAGES: [&str; 4] = [
    "recovery_code",
    "password_changed",
    "unknown_recipient",
    "account_secured",
];

/// The shared frame of the built-in HTML mails; an operator may replace it too.
const LAYOUT: &str = "layout.html";

/// One rendering of a message: a mail's subject, text or HTML, or an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Subject,
    Text,
    Html,
    Sms,
}

impl Part {
    pub fn extension(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "txt",
            Part::Html => "html",
            Part::Sms => "sms",
        }
    }

    /// The parts `message` has: every one is a mail; all but the notice to an
    /// address without an account can also go by SMS.
    pub fn of(message: &str) -> &'static [Part] {
        match message {
            "unknown_recipient" => &[Part::Subject, Part::Text, Part::Html],
            _ => &[Part::Subject, Part::Text, Part::Html, Part::Sms],
        }
    }
}

/// Every value a template can name. An unset one is `none`, so
/// `{% if support_contact %}` works while a misspelt name is an error.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Vars {
    pub code: Option<String>,
    pub link: Option<String>,
    pub minutes: Option<u64>,
    pub product_name: String,
    pub support_contact: Option<String>,
    pub logo_url: Option<String>,
    pub when: Option<String>,
    pub ip: Option<String>,
    pub device: Option<String>,
    pub report_link: Option<String>,
    pub cancel_link: Option<String>,
}

impl Vars {
    /// Values for `templates check` and `templates preview`: every one set.
    pub fn sample() -> Self {
        Self {
            code: Some("123456".into()),
            link: Some("https://auth.example.com/ui/recovery/continue?token=SAMPLE".into()),
            minutes: Some(15),
            product_name: "Example".into(),
            support_contact: Some("support@example.com".into()),
            logo_url: Some("https://example.com/logo.png".into()),
            when: Some("2026-12-01 09:30 UTC".into()),
            ip: Some("203.0.113.7".into()),
            device: Some("Firefox, Linux".into()),
            report_link: Some("https://auth.example.com/ui/report?token=SAMPLE".into()),
            cancel_link: Some("https://auth.example.com/ui/report?token=SAMPLE".into()),
        }
    }

    /// The sample with every optional value unset, as a minimal setup sends.
    fn sparse() -> Self {
        Self {
            product_name: "Example".into(),
            code: Some("123456".into()),
            minutes: Some(15),
            when: Some("2026-12-01 09:30 UTC".into()),
            ..Self::default()
        }
    }
}

macro_rules! built_in {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/messages/", $name)))),*]
    };
}

/// The built-in templates, compiled into the binary.
static BUILT_IN: &[(&str, &str)] = built_in![
    "layout.html",
    "en/recovery_code.subject",
    "en/recovery_code.txt",
    "en/recovery_code.html",
    "en/recovery_code.sms",
    "en/password_changed.subject",
    "en/password_changed.txt",
    "en/password_changed.html",
    "en/password_changed.sms",
    "en/unknown_recipient.subject",
    "en/unknown_recipient.txt",
    "en/unknown_recipient.html",
    "en/account_secured.subject",
    "en/account_secured.txt",
    "en/account_secured.html",
    "en/account_secured.sms",
    "vi/recovery_code.subject",
    "vi/recovery_code.txt",
    "vi/recovery_code.html",
    "vi/recovery_code.sms",
    "vi/password_changed.subject",
    "vi/password_changed.txt",
    "vi/password_changed.html",
    "vi/password_changed.sms",
    "vi/unknown_recipient.subject",
    "vi/unknown_recipient.txt",
    "vi/unknown_recipient.html",
    "vi/account_secured.subject",
    "vi/account_secured.txt",
    "vi/account_secured.html",
    "vi/account_secured.sms",
];

fn built_in(name: &str) -> anyhow::Result<&'static str> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, source)| *source)
        .with_context(|| format!("no built-in template {name}"))
}

fn template_name(locale: Locale, message: &str, part: Part) -> String {
    format!("{locale}/{message}.{}", part.extension())
}

/// Where each template came from, for `templates check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    /// The operator's file it was read from, or `None` for the built-in one.
    pub file: Option<std::path::PathBuf>,
}

pub struct Templates {
    env: Environment<'static>,
    sources: Vec<Source>,
}

impl Templates {
    /// The built-in templates only.
    pub fn built_in() -> anyhow::Result<Self> {
        Self::load(None, Locale::En)
    }

    /// Reads the operator's templates from `dir` over the built-in ones: for
    /// each locale and message, the operator's file, else the operator's
    /// file for `default_locale`, else the built-in one. Then renders every
    /// template with sample values: a syntax error, an unknown variable or a
    /// stray file in `dir` is an error naming the file.
    pub fn load(dir: Option<&Path>, default_locale: Locale) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        let mut sources = Vec::new();
        let mut add = |env: &mut Environment<'static>, name: String, candidates: &[String]| -> anyhow::Result<()> {
            let found = match dir {
                Some(dir) => operator_file(dir, candidates)?,
                None => None,
            };
            let (source, file) = match found {
                Some((path, source)) => (source, Some(path)),
                None => (built_in(&name)?.to_owned(), None),
            };
            let shown = file
                .as_ref()
                .map_or_else(|| format!("built-in {name}"), |f| f.display().to_string());
            env.add_template_owned(name.clone(), source)
                .with_context(|| format!("template {shown} does not parse"))?;
            sources.push(Source { name, file });
            Ok(())
        };
        add(&mut env, LAYOUT.to_owned(), &[LAYOUT.to_owned()])?;
        for locale in Locale::ALL {
            for message in MESSAGES {
                for &part in Part::of(message) {
                    let name = template_name(locale, message, part);
                    let fallback = template_name(default_locale, message, part);
                    add(&mut env, name.clone(), &[name, fallback])?;
                }
            }
        }
        if let Some(dir) = dir {
            reject_stray_files(dir)?;
        }
        let templates = Self { env, sources };
        templates.check()?;
        Ok(templates)
    }

    /// Names every variable each template uses, in any branch, against the
    /// ones it is given, then renders it with every value set and with only
    /// the required ones; returns how many templates there are. (Rendering
    /// alone misses a misspelt name in a branch the samples do not take.)
    pub fn check(&self) -> anyhow::Result<usize> {
        let serde_json::Value::Object(known) = serde_json::to_value(Vars::sample())? else {
            anyhow::bail!("template variables are not a map");
        };
        for source in &self.sources {
            let template = self.env.get_template(&source.name)?;
            let mut unknown: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|name| !known.contains_key(name) && self.env.globals().all(|(global, _)| global != name))
                .collect();
            if !unknown.is_empty() {
                unknown.sort();
                let shown = source
                    .file
                    .as_ref()
                    .map_or_else(|| format!("built-in {}", source.name), |f| f.display().to_string());
                anyhow::bail!(
                    "template {shown} names unknown variables: {} (known: {})",
                    unknown.join(", "),
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        for locale in Locale::ALL {
            for message in MESSAGES {
                for &part in Part::of(message) {
                    for vars in [Vars::sample(), Vars::sparse()] {
                        self.render(locale, message, part, &vars)?;
                    }
                }
            }
        }
        Ok(self.sources.len())
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// One part of one message. A subject is one line; other parts end with
    /// one newline.
    pub fn render(&self, locale: Locale, message: &str, part: Part, vars: &Vars) -> anyhow::Result<String> {
        let name = template_name(locale, message, part);
        let shown = self
            .sources
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.file.as_ref())
            .map_or_else(|| format!("built-in {name}"), |f| f.display().to_string());
        let rendered = self
            .env
            .get_template(&name)
            .and_then(|t| t.render(vars))
            .map_err(|e| anyhow::anyhow!("template {shown} does not render: {e:#}"))?;
        Ok(match part {
            Part::Subject => rendered.split_whitespace().collect::<Vec<_>>().join(" "),
            Part::Sms => rendered.trim().to_owned(),
            Part::Text | Part::Html => format!("{}\n", rendered.trim_end()),
        })
    }
}

/// The first of `candidates` (relative names) that exists under `dir`.
fn operator_file(dir: &Path, candidates: &[String]) -> anyhow::Result<Option<(std::path::PathBuf, String)>> {
    for candidate in candidates {
        let path = dir.join(candidate);
        match std::fs::read_to_string(&path) {
            Ok(source) => return Ok(Some((path, source))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read template {}", path.display())),
        }
    }
    Ok(None)
}

/// A file in the templates folder that replaces nothing is almost always a
/// misspelt name: say so instead of silently sending the built-in text.
fn reject_stray_files(dir: &Path) -> anyhow::Result<()> {
    let known = |relative: &str| {
        relative == LAYOUT
            || Locale::ALL.iter().any(|&locale| {
                MESSAGES.iter().any(|message| {
                    Part::of(message)
                        .iter()
                        .any(|&part| template_name(locale, message, part) == relative)
                })
            })
    };
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read courier.templates_dir {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            anyhow::ensure!(
                Locale::parse(&name).is_some_and(|l| l.as_str() == name),
                "{}: not a locale folder (en, vi)",
                entry.path().display()
            );
            for inner in std::fs::read_dir(entry.path())? {
                let inner = inner?;
                let file = inner.file_name().to_string_lossy().into_owned();
                if !file.starts_with('.') && !known(&format!("{name}/{file}")) {
                    anyhow::bail!(
                        "{}: no message has this template (messages: {}; parts: subject, txt, html, sms)",
                        inner.path().display(),
                        MESSAGES.join(", ")
                    );
                }
            }
        } else if !known(&name) {
            anyhow::bail!("{}: no message has this template", entry.path().display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_renders_in_every_locale() -> anyhow::Result<()> {
        let templates = Templates::built_in()?;
        assert_eq!(templates.check()?, BUILT_IN.len());
        let text = templates.render(Locale::Vi, "recovery_code", Part::Text, &Vars::sample())?;
        assert!(text.contains("Mã khôi phục của bạn là: 123456\n"), "{text}");
        assert!(text.contains("vẫn giữ nguyên"), "{text}");
        Ok(())
    }

    #[test]
    fn a_misspelt_variable_in_a_branch_no_sample_takes_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("en"))?;
        // `support_contact` is set in one sample and unset in the other, so
        // both branches render; the `else` of a value every sample sets does not.
        std::fs::write(
            dir.path().join("en/recovery_code.sms"),
            "{% if code %}{{ code }}{% else %}{{ cdoe }}{% endif %}",
        )?;
        let error = format!(
            "{:#}",
            Templates::load(Some(dir.path()), Locale::En)
                .err()
                .ok_or_else(|| anyhow::anyhow!("accepted"))?
        );
        assert!(error.contains("recovery_code.sms") && error.contains("cdoe"), "{error}");
        Ok(())
    }

    #[test]
    fn html_values_are_escaped_and_text_values_are_not() -> anyhow::Result<()> {
        let templates = Templates::built_in()?;
        let vars = Vars {
            product_name: "A&B <Shop>".into(),
            ..Vars::sample()
        };
        let html = templates.render(Locale::En, "password_changed", Part::Html, &vars)?;
        assert!(html.contains("A&amp;B &lt;Shop&gt;"), "{html}");
        assert!(!html.contains("<Shop>"), "{html}");
        let text = templates.render(Locale::En, "password_changed", Part::Text, &vars)?;
        assert!(text.contains("A&B <Shop>"), "{text}");
        Ok(())
    }
}
