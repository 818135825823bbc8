//! Parsing: the attribute's arguments and the item it annotates.
//!
//! `#[flow("path.flow")]`, `#[flow("path.flow", precision = "f64")]`, `verify = false`. Unknown keys, repeated
//! keys and unknown precisions are errors spanned on the offending tokens; all of them are reported.

use syn::parse::{Parse, ParseStream};
use syn::{DeriveInput, Ident, LitStr, Token};

/// The scalar type the generated methods compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// `f32` (the default).
    F32,
    /// `f64` (the weights keep the file's type; `f32` weights are widened exactly).
    F64,
}

/// The attribute's arguments.
pub struct Args {
    /// The model file's path as written.
    pub path: LitStr,
    /// `precision = "…"`.
    pub precision: Precision,
    /// `verify = false` turns off the generated golden-vector test (default on).
    pub verify: bool,
}

const KEYS: &str = "`precision`, `verify`";

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() || !input.peek(LitStr) {
            return Err(input
                .error("expected the model file path as a string literal: #[flow(\"models/model.flow\")]"));
        }
        let path: LitStr = input.parse()?;
        let mut precision: Option<(Precision, Ident)> = None;
        let mut verify: Option<bool> = None;
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match errors.as_mut() {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break; // trailing comma
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            if key == "verify" {
                let v: syn::LitBool = input.parse()?;
                if verify.replace(v.value).is_some() {
                    push(syn::Error::new(key.span(), "`verify` is given twice"));
                }
                continue;
            }
            let value: LitStr = input.parse()?;
            match key.to_string().as_str() {
                "precision" => {
                    let p = match value.value().as_str() {
                        "f32" => Precision::F32,
                        "f64" => Precision::F64,
                        other => {
                            push(syn::Error::new(
                                value.span(),
                                format!("unsupported precision \"{other}\" (expected \"f32\" or \"f64\")"),
                            ));
                            continue;
                        }
                    };
                    if precision.is_some() {
                        push(syn::Error::new(key.span(), "`precision` is given twice"));
                    } else {
                        precision = Some((p, key));
                    }
                }
                other => push(syn::Error::new(
                    key.span(),
                    format!("unknown option `{other}` (expected {KEYS})"),
                )),
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(Args {
                path,
                precision: precision.map_or(Precision::F32, |(p, _)| p),
                verify: verify.unwrap_or(true),
            }),
        }
    }
}

/// The annotated item: a struct without generic parameters.
pub fn item(tokens: proc_macro2::TokenStream) -> syn::Result<DeriveInput> {
    let item: DeriveInput = syn::parse2(tokens)?;
    if !matches!(item.data, syn::Data::Struct(_)) {
        return Err(syn::Error::new(
            item.ident.span(),
            "#[flow] goes on a struct, e.g. `pub struct Moons;`",
        ));
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            item.ident.span(),
            "#[flow] goes on a struct without generic parameters",
        ));
    }
    Ok(item)
}
