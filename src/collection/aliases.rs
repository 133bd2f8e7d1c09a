//! Collection aliases: other names for a collection, which every endpoint taking a collection
//! name accepts. Changed by lists of actions applied all or nothing, as Qdrant does; kept by
//! the registry on a single node and by the metadata group in cluster mode, with the same rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::CollectionError;

/// Alias name → collection name.
pub type Aliases = BTreeMap<String, String>;

/// One change of `POST /collections/aliases`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AliasAction {
    /// Points `alias_name` at `collection_name` (replacing where it pointed before).
    CreateAlias {
        collection_name: String,
        alias_name: String,
    },
    /// Removes `alias_name` (nothing if there is none).
    DeleteAlias { alias_name: String },
    /// Gives an alias a new name.
    RenameAlias {
        old_alias_name: String,
        new_alias_name: String,
    },
}

/// `POST /collections/aliases` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasActions {
    pub actions: Vec<AliasAction>,
}

/// One alias, as the listing endpoints return it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AliasDescription {
    pub alias_name: String,
    pub collection_name: String,
}

/// `result` of `GET /aliases` and `GET /collections/{name}/aliases`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CollectionsAliases {
    pub aliases: Vec<AliasDescription>,
}

/// The aliases after `actions`, or why they cannot apply (then nothing changes). An alias
/// points at a collection, never at another alias, and never takes a collection's name.
pub fn apply(
    aliases: &Aliases,
    is_collection: impl Fn(&str) -> bool,
    actions: &[AliasAction],
) -> Result<Aliases, CollectionError> {
    let mut next = aliases.clone();
    let taken = |name: &str| {
        if is_collection(name) {
            return Err(CollectionError::Conflict(format!(
                "Collection `{name}` already exists!"
            )));
        }
        super::config::validate_name(name).map_err(|e| CollectionError::BadRequest(e.0))
    };
    for action in actions {
        match action {
            AliasAction::CreateAlias {
                collection_name,
                alias_name,
            } => {
                if !is_collection(collection_name) {
                    return Err(CollectionError::NotFound(format!(
                        "Collection `{collection_name}` doesn't exist!"
                    )));
                }
                taken(alias_name)?;
                next.insert(alias_name.clone(), collection_name.clone());
            }
            AliasAction::DeleteAlias { alias_name } => {
                next.remove(alias_name);
            }
            AliasAction::RenameAlias {
                old_alias_name,
                new_alias_name,
            } => {
                taken(new_alias_name)?;
                let target = next.remove(old_alias_name).ok_or_else(|| {
                    CollectionError::NotFound(format!("Alias `{old_alias_name}` doesn't exist!"))
                })?;
                next.insert(new_alias_name.clone(), target);
            }
        }
    }
    Ok(next)
}

/// The aliases pointing at `collection` (all of them with `None`), sorted by alias name.
pub fn list(aliases: &Aliases, collection: Option<&str>) -> CollectionsAliases {
    let listed = aliases
        .iter()
        .filter(|(_, c)| collection.is_none_or(|wanted| wanted == c.as_str()))
        .map(|(alias, c)| AliasDescription {
            alias_name: alias.clone(),
            collection_name: c.clone(),
        });
    CollectionsAliases {
        aliases: listed.collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(alias: &str, collection: &str) -> AliasAction {
        AliasAction::CreateAlias {
            collection_name: collection.into(),
            alias_name: alias.into(),
        }
    }

    #[test]
    fn actions_apply_in_order_and_all_or_nothing() {
        let is_collection = |n: &str| n == "a" || n == "b";
        let start = apply(&Aliases::new(), is_collection, &[create("x", "a")]).unwrap();
        let switched = [
            create("x", "b"),
            AliasAction::RenameAlias {
                old_alias_name: "x".into(),
                new_alias_name: "y".into(),
            },
        ];
        let next = apply(&start, is_collection, &switched).unwrap();
        assert_eq!(next, Aliases::from([("y".into(), "b".into())]));
        // The second action fails: the first does not apply either.
        let failing = [
            AliasAction::DeleteAlias {
                alias_name: "x".into(),
            },
            create("z", "missing"),
        ];
        let e = apply(&start, is_collection, &failing).unwrap_err();
        assert!(matches!(e, CollectionError::NotFound(_)), "{e}");
        let clash = apply(&start, is_collection, &[create("a", "b")]).unwrap_err();
        assert!(matches!(clash, CollectionError::Conflict(_)), "{clash}");
        assert_eq!(list(&next, Some("a")).aliases.len(), 0);
        assert_eq!(list(&next, Some("b")).aliases[0].alias_name, "y");
    }
}
