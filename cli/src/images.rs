//! `monk images [-o json]` and `monk images rm REPO:TAG`: the cluster registry's
//! catalog (every tagged image, its digest, size and the peers holding all its
//! blobs), and removing a tag (each peer then deletes the blobs no image names).

use clap::Subcommand;
use monk_statemachine::{Applied, Command, ImageRow};

use crate::{actor, connect, json, table, Failure, Outcome, Output, OutputArg};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImagesArgs {
    #[command(subcommand)]
    cmd: Option<ImagesCmd>,
    #[command(flatten)]
    out: OutputArg,
    /// Answer from the addressed peer's state without asking the leader.
    #[arg(long)]
    stale: bool,
}

#[derive(Subcommand, Debug)]
enum ImagesCmd {
    /// Remove a tag; manifests and blobs nothing else names go with it.
    #[command(visible_alias = "remove")]
    Rm {
        /// `REPO:TAG`, as pushed (without the registry's host).
        image: String,
    },
}

pub async fn run(addr: &str, args: ImagesArgs) -> Outcome {
    match args.cmd {
        Some(ImagesCmd::Rm { image }) => remove(addr, &image).await,
        None => {
            let rows = connect(addr).await?.images(args.stale).await?;
            match args.out.output {
                Output::Json => json(&rows),
                Output::Table => Ok(image_table(&rows)),
            }
        }
    }
}

/// `REPO:TAG` split at its last `:` after the last `/` (a host's port is not a tag).
fn split_image(image: &str) -> Option<(&str, &str)> {
    let (repository, tag) = image.rsplit_once(':')?;
    (!tag.contains('/') && !repository.is_empty() && !tag.is_empty()).then_some((repository, tag))
}

async fn remove(addr: &str, image: &str) -> Outcome {
    let Some((repository, tag)) = split_image(image) else {
        return Err(Failure::usage(format!(
            "images rm: {image:?} is not REPO:TAG"
        )));
    };
    let command = Command::ImageRemoved {
        repository: repository.to_string(),
        tag: tag.to_string(),
    };
    let outcome = connect(addr).await?.propose(&actor(), command).await?;
    match outcome.applied {
        Applied::Accepted { .. } => Ok(format!(
            "image {repository}:{tag} removed at index {}\n",
            outcome.index
        )),
        Applied::Rejected { reason } => Err(Failure::failed(format!("images rm: {reason}"))),
    }
}

fn image_table(rows: &[ImageRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.repository.clone(),
                r.tag.clone(),
                r.digest.get(..19).unwrap_or(&r.digest).to_string(),
                r.size.to_string(),
                table::join_or_dash(r.holders.iter()),
            ]
        })
        .collect();
    table::render(&["REPOSITORY", "TAG", "DIGEST", "SIZE", "HOLDERS"], &cells)
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn image_names_split_at_the_tag() {
        assert_eq!(split_image("app:1"), Some(("app", "1")));
        assert_eq!(split_image("a/b:v1.2"), Some(("a/b", "v1.2")));
        assert_eq!(split_image("host:5000/app"), None);
        assert_eq!(split_image("app"), None);
        assert_eq!(split_image("app:"), None);
    }
}
