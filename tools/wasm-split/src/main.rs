//! Splits the browser bundle at its split points (`#[island(lazy)]`), the
//! step cargo-leptos runs with `--split`, for `scripts/build.sh`:
//!
//! ```text
//! paved-wasm-split INPUT.wasm PKG_DIR MAIN_OUT.wasm OUTPUT_NAME
//! ```
//!
//! Writes each lazily loaded chunk and the loader Leptos expects
//! (`__wasm_split.______________________.js`) into `PKG_DIR`, the main module
//! (still to be run through wasm-bindgen) to `MAIN_OUT.wasm`, and
//! `__wasm_split_manifest.json`, from which the server preloads the chunks of
//! the islands a page renders.
use std::{path::Path, process::ExitCode};

/// The loader's name as Leptos' `HydrationScripts` links it.
const LINK_NAME: &str = "./__wasm_split.______________________.js";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, pkg_dir, main_out, output_name] = args.as_slice() else {
        eprintln!("usage: paved-wasm-split INPUT.wasm PKG_DIR MAIN_OUT.wasm OUTPUT_NAME");
        return ExitCode::from(2);
    };
    match run(
        Path::new(input),
        Path::new(pkg_dir),
        Path::new(main_out),
        output_name,
    ) {
        Ok(chunks) => {
            println!("{chunks} lazily loaded chunks written to {pkg_dir}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paved-wasm-split: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &Path, pkg_dir: &Path, main_out: &Path, output_name: &str) -> Result<usize, String> {
    let wasm = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    std::fs::create_dir_all(pkg_dir).map_err(|e| format!("creating {}: {e}", pkg_dir.display()))?;
    let main_module = format!("./{output_name}.js");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&wasm);
        opts.output_dir = pkg_dir;
        opts.main_out_path = main_out;
        opts.main_module = &main_module;
        opts.link_name = LINK_NAME;
        opts
    })
    .map_err(|e| format!("splitting {}: {e:?}", input.display()))?;
    let manifest = serde_json::to_string_pretty(&split.prefetch_map).map_err(|e| e.to_string())?;
    let manifest_path = pkg_dir.join("__wasm_split_manifest.json");
    std::fs::write(&manifest_path, manifest)
        .map_err(|e| format!("writing {}: {e}", manifest_path.display()))?;
    Ok(split.split_modules.len())
}
