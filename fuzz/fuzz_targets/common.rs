//! Shared by the loader targets: the schema and policy of the UI tests.

use std::sync::{Arc, OnceLock};

use bangfu::Plan;
use bangfu::source::SourceText;

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let files = [
            bangfu::PolicyFile::new("schema.bangfu", include_str!("../../tests/ui/schema.bangfu")),
            bangfu::PolicyFile::new("policy.bangfu", include_str!("../../tests/ui/data/policy.bangfu")),
        ];
        bangfu::compile_policies(&files, &[]).expect("the ui policies compile")
    })
}

pub fn load_and_run(kind: &str, data: &[u8]) {
    let plan = plan();
    let schema = &plan.schema.data;
    let loaded = match kind {
        "json" => bangfu::data::json::load(SourceText::new("d.json", Arc::new(data.to_vec())), schema),
        "yaml" => bangfu::data::yaml::load(SourceText::new("d.yaml", Arc::new(data.to_vec())), schema),
        _ => {
            static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
            let dir = DIR.get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("bangfu-fuzz-csv-{}", std::process::id()));
                let _ = std::fs::create_dir_all(&dir);
                dir
            });
            if std::fs::write(dir.join("people.csv"), data).is_err() {
                return;
            }
            bangfu::data::csv::load_dir(dir, schema)
        }
    };
    if let Ok(dataset) = loaded {
        let _ = bangfu::evaluate(plan, &dataset, &|_| true);
    }
}
