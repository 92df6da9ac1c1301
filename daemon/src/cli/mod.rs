//! Command-line interface: one module per command group, each with its clap definition and runner.
//! The logic lives in the library (`palmgate::…`); these modules parse, call it and print.
//!
//! # Layout
//! - `run`: `palmgate run` (signals, runtime, `gate::Devices::production`, `gate::run`).
//! - `config_cmd`: `config check` / `config show`.
//! - `issuer`, `card`: issuer keys; card personalisation, enrolment, erasure and receipts.
//! - `enrol`: the enrolment station (`palmgate enrol`).
//! - `revoke`: the operator side of the revocation list.
//! - `meals`: `meals report`, the CSV of meals per person and period.
//! - `broker`: the broker and station arguments shared by the commands that publish.
//! - `door`: door diagnostics on the configured GPIO.
//! - `sensor`, `synth`, `template`, `eval`: sensor tools, synthetic palms, templates, evaluation.

pub mod broker;
pub mod card;
pub mod config_cmd;
pub mod door;
pub mod enrol;
pub mod eval;
pub mod issuer;
pub mod meals;
pub mod pad;
pub mod revoke;
pub mod run;
pub mod sensor;
pub mod synth;
pub mod template;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// palmgate: access-control gateway with match-on-card palm verification.
#[derive(Debug, Parser)]
#[command(name = "palmgate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gate daemon.
    Run(run::RunArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Talk to a palmgate card through a PC/SC reader.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// Manage the issuer (site) key that certifies cards.
    #[command(subcommand)]
    Issuer(issuer::IssuerCommand),
    /// Talk to (or simulate) a palm sensor on a serial line.
    #[command(subcommand)]
    Sensor(sensor::SensorCommand),
    /// Exercise a door's outputs and inputs.
    #[command(subcommand)]
    Door(door::DoorCommand),
    /// Palm templates.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Write synthetic palm images (the project's own test and demo data).
    Synth(synth::SynthArgs),
    /// Evaluate the matcher over a folder of `<identity>/<sample>` images.
    Eval(eval::EvalArgs),
    /// Presentation attack detection: evaluate it (ISO/IEC 30107-3), write modelled attacks.
    #[command(subcommand)]
    Pad(pad::PadCommand),
    /// Revoke a lost card (or restore it): update the site's list, sign it for each gate and
    /// publish it retained over MQTT.
    Revoke(revoke::RevokeArgs),
    /// Enrolment station: consent, palm captures, personalise and enrol a card, verify it
    /// (exit status 0 enrolled, 1 refused, 2 error).
    Enrol(enrol::EnrolArgs),
    /// Canteen: meals per person and period from the `meal.served` events.
    #[command(subcommand)]
    Meals(meals::MealsCommand),
}

/// `--config FILE`, shared by the commands that read the configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Main configuration file; `conf.d/*.toml` beside it are layered on top.
    #[arg(long, short = 'c', value_name = "FILE", default_value = palmgate::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Card(cmd) => card::run(cmd),
        Command::Issuer(cmd) => issuer::run(cmd),
        Command::Sensor(cmd) => sensor::run(cmd),
        Command::Door(cmd) => door::run(cmd),
        Command::Template(cmd) => template::run(cmd),
        Command::Synth(args) => synth::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Pad(cmd) => pad::run(cmd),
        Command::Revoke(args) => revoke::run(args),
        Command::Enrol(args) => enrol::run(args),
        Command::Meals(cmd) => meals::run(cmd),
    }
}
