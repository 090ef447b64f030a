//! A campaign's `disk_model`: one model, or a list of them.

use serde::Deserialize;

use super::{CampaignConfig, Setting};

/// One disk model, or a list of them (`disk_model = "posix"` or
/// `disk_model = ["posix", "journaled"]`).
#[derive(Clone, Debug, PartialEq)]
pub enum DiskModels {
    /// One model.
    One(faultline_rundir::spec::DiskModel),
    /// Several: one setting per model.
    Many(Vec<faultline_rundir::spec::DiskModel>),
}

impl<'de> Deserialize<'de> for DiskModels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DiskModels;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a disk model (posix, journaled or names-durable) or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DiskModels, E> {
                v.parse().map(DiskModels::One).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DiskModels, A::Error> {
                let mut v = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    let m = name.parse().map_err(serde::de::Error::custom)?;
                    if v.contains(&m) {
                        return Err(serde::de::Error::custom(format!(
                            "disk model {m} is listed twice"
                        )));
                    }
                    v.push(m);
                }
                Ok(DiskModels::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl DiskModels {
    /// Every model listed (posix for an empty list).
    pub fn all(&self) -> Vec<faultline_rundir::spec::DiskModel> {
        match self {
            DiskModels::One(m) => vec![*m],
            DiskModels::Many(v) if v.is_empty() => vec![Default::default()],
            DiskModels::Many(v) => v.clone(),
        }
    }

    /// The first model listed (the only one, once settings are one per
    /// model).
    pub fn first(&self) -> faultline_rundir::spec::DiskModel {
        self.all()[0]
    }
}

/// A setting that lists several disk models (its own, or the
/// campaign's) becomes one setting per model, named `NAME@MODEL`, in
/// the order listed, each with its `expect_by_model` entry as its
/// expectation.
pub(super) fn one_model_per_setting(mut c: CampaignConfig) -> anyhow::Result<CampaignConfig> {
    let shared = c.run.disk_model.clone();
    let mut out = Vec::new();
    for s in std::mem::take(&mut c.settings) {
        let models = s.disk_model.clone().unwrap_or_else(|| shared.clone()).all();
        for name in s.expect_by_model.keys() {
            let m: faultline_rundir::spec::DiskModel = name
                .parse()
                .map_err(|e| anyhow::anyhow!("setting {}: expect_by_model: {e}", s.name))?;
            anyhow::ensure!(
                models.contains(&m),
                "setting {}: expect_by_model names disk model {m}, which the setting does not run under",
                s.name
            );
        }
        let expect = |m: faultline_rundir::spec::DiskModel| {
            s.expect_by_model.get(m.name()).copied().or(s.expect)
        };
        if models.len() <= 1 {
            out.push(Setting {
                expect: expect(models[0]),
                ..s
            });
            continue;
        }
        for m in models {
            out.push(Setting {
                name: format!("{}@{m}", s.name),
                disk_model: Some(DiskModels::One(m)),
                expect: expect(m),
                model_of: Some(s.name.clone()),
                ..s.clone()
            });
        }
    }
    c.settings = out;
    Ok(c)
}
