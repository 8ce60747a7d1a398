//! Every diagnostic integ reports, with all of its wording in this one file.

use super::Code;

/// What went wrong. The message is the `Display`; `label` marks the span; `help` says how
/// to fix it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DiagnosticKind {
    #[error("internal error while reading the spec: {0}")]
    InternalError(String),
    #[error("unexpected {found}")]
    Syntax {
        found: String,
        expected: String,
        hint: Option<String>,
    },
    #[error("unknown escape `{escape}` in a string")]
    InvalidEscape { escape: String },
    #[error("duration `{text}` is too long")]
    DurationOverflow { text: String },
    #[error("number `{text}` is out of range")]
    NumberOutOfRange { text: String, range: &'static str },

    #[error("the file is not valid UTF-8")]
    NotUtf8,
    #[error("a value nests more than {max} levels deep, counting brackets and operators")]
    TooDeep { max: usize },

    #[error("{what} `{name}` is declared twice")]
    DuplicateName { what: &'static str, name: String },
    #[error("unknown connection `{name}`")]
    UnknownConnection {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`{name}` is not known here")]
    UnknownRoot {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
        /// Why a name that exists elsewhere cannot be read here.
        reason: Option<&'static str>,
    },
    #[error("step `{name}` has not run yet at this point")]
    StepNotYetRun { name: String, is_self: bool },
    #[error("unknown fallback `{name}`")]
    UnknownFallback {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`{keyword}` is set twice")]
    DuplicateSetting { keyword: &'static str },
    #[error("unknown function `{name}`")]
    UnknownFunction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`{function}` takes {expected}")]
    BadArguments {
        function: &'static str,
        expected: &'static str,
        example: &'static str,
    },
    #[error("unknown step `{name}`")]
    UnknownStep {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`{name}` is given twice")]
    DuplicateField { name: String },
    #[error("`{function}(\"{name}\")` names a variable that can never be set")]
    InvalidVariableName {
        function: &'static str,
        name: String,
    },

    #[error("`header()` reads a webhook request's headers, and there is none here")]
    HeaderWithoutRequest,

    #[error("invalid JSONPath: {reason}")]
    InvalidJsonPath { reason: String },
    #[error("invalid template: {reason}")]
    InvalidTemplate { reason: String },
    #[error("`{target}` is assigned twice")]
    DuplicateTarget { target: String },
    #[error("`{target}` is assigned a value and also used as a container")]
    TargetConflict { target: String },
    #[error("list index `{index}` in `{target}` is above {max}")]
    ListIndexTooLarge {
        target: String,
        index: usize,
        max: usize,
    },
    #[error("{what} must be a JSONPath")]
    NotAPath { what: &'static str },

    #[error("comparisons do not chain")]
    ChainedComparison,
    #[error("unknown template {what} `{name}`")]
    UnknownTemplateName {
        what: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    #[error("filter `{filter}` takes {expected}")]
    FilterArguments {
        filter: &'static str,
        expected: String,
        example: &'static str,
    },
    #[error("filter `{filter}` cannot take this argument: {reason}")]
    FilterArgument {
        filter: &'static str,
        reason: String,
    },
    #[error("invalid cron expression: {reason}")]
    InvalidCron { reason: String },
    #[error("unknown time zone `{name}`")]
    UnknownTimezone {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown signature preset `{name}`")]
    UnknownSignaturePreset {
        name: String,
        suggestion: Option<String>,
    },
    #[error("integration `{name}` is also defined in `{other}`")]
    IntegrationNameClash { name: String, other: String },
    #[error("webhook `{method} {path}` is also served by `{other}`")]
    WebhookPathClash {
        method: &'static str,
        path: String,
        other: String,
    },
    #[error("webhook path `{path}` {problem}")]
    InvalidWebhookPath { path: String, problem: &'static str },
    #[error("`{option}` has no effect with the `{preset}` preset")]
    SignatureOptionUnused {
        option: &'static str,
        preset: String,
    },
    #[error("unknown signature encoding `{name}`")]
    UnknownSignatureEncoding { name: String },
    #[error("poll trigger has no `every` interval")]
    PollWithoutInterval,
    #[error("the `hmac_sha256` signature needs the header that carries it")]
    SignatureWithoutHeader,
    #[error("{}", match .sent_from { Some(kind) => format!("a mark of type `{kind}` cannot be sent as `{name}`"), None => format!("unknown mark type `{name}`") })]
    UnknownMarkType {
        name: String,
        /// For `send`: the type of the mark being sent.
        sent_from: Option<String>,
        suggestion: Option<String>,
    },
    #[error("`start` is not a mark of type `{kind}`: {reason}")]
    StartNotOfMarkType { kind: String, reason: String },
    #[error("a {given} look-back does not apply to a mark of type `{kind}`")]
    LookbackNotOfMarkType { kind: String, given: &'static str },
    #[error("the poll keeps a mark but its request never reads `since`")]
    SinceNeverSent,
    #[error("dedupe keys kept {retention} {problem}")]
    DedupeRetentionOutOfBounds { retention: String, problem: String },
    #[error("a {method} poll sends no body, so {what} goes nowhere")]
    BodyWithoutMethod {
        method: &'static str,
        what: &'static str,
    },

    #[error("connection `{name}` has no `base_url`")]
    MissingBaseUrl { name: String },
    #[error("{what} is written in the spec as a literal")]
    LiteralSecret { what: String },
    #[error("unknown body encoding `{name}`")]
    UnknownEncoding {
        name: String,
        suggestion: Option<String>,
    },
    #[error("{problem}")]
    OAuth2Field {
        problem: String,
        suggestion: Option<String>,
    },
    #[error("connections have no field `{name}`")]
    UnknownOverrideField {
        name: String,
        suggestion: Option<String>,
    },
    #[error("{what} must be at least 1")]
    ZeroLimit { what: &'static str },
    #[error("a failure ratio is a percentage above 0% and at most 100%")]
    BadPercentage,
    #[error("this is not a value `{field}` takes")]
    InvalidOverrideValue { field: String },
    #[error("base URL `{url}` is not an absolute http(s) URL without a query")]
    InvalidBaseUrl { url: String },
    #[error("`{name}` is not a valid HTTP header name")]
    InvalidHeaderName { name: String },
    #[error("the value of header `{header}` cannot be sent over HTTP")]
    InvalidHeaderValue { header: String },
    #[error("oauth2 `token_url` `{url}` is not an absolute http(s) URL")]
    InvalidTokenUrl { url: String },
    #[error("a template cannot read a secret")]
    SecretInTemplate,
    #[error("header `{name}` carries a credential or a signature")]
    SecretHeader { name: String },

    #[error("retry delay range ends before it starts (`{initial}..{max}`)")]
    InvertedDelays { initial: String, max: String },
    #[error("a step makes at least one attempt; `retry 0` never runs it")]
    ZeroAttempts,
    #[error("unknown retry condition `{name}`")]
    UnknownRetryCondition {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown `on_error` action `{name}`")]
    UnknownOnErrorAction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown `retry_after` mode `{name}`")]
    UnknownRetryAfterMode { name: String },
    #[error("unknown response rule action `{name}`")]
    UnknownRuleAction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown rules preset `{name}`")]
    UnknownRulePreset {
        name: String,
        suggestion: Option<String>,
    },
    #[error("{clause} does not apply to the action `{action}`")]
    MisplacedRuleClause {
        clause: &'static str,
        action: String,
    },
    #[error("`{status}` is not an HTTP status")]
    InvalidRuleStatus { status: String },
    #[error("this rule never matches: an earlier rule takes every answer it would")]
    RuleNeverMatches,
    #[error("a `retry` rule on step `{step}`, which makes one attempt")]
    RetryRuleWithoutRetry { step: String },
    #[error("unknown `partial_data` policy `{name}`")]
    UnknownPartialDataPolicy { name: String },

    #[error("GraphQL step `{step}` has no `document`")]
    GraphqlDocument { step: String },
    #[error("`{keyword}` only applies to GraphQL steps")]
    GraphqlOnly { keyword: &'static str },
    #[error("`paginate` needs `items` to know what each page holds")]
    PaginationWithoutItems,
    #[error("unknown alert metric `{name}`")]
    UnknownAlertMetric {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown alert channel `{name}`")]
    UnknownAlertChannel {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown step outcome `{name}`")]
    UnknownStepOutcome {
        name: String,
        suggestion: Option<String>,
    },
    #[error("path `{path}` has a `.` or `..` segment")]
    DotSegmentPath { path: String },
    #[error("`{keyword}` applies only to a step with `paginate`")]
    NeedsPaginate { keyword: &'static str },
    #[error("test has no `event`")]
    TestWithoutEvent,
    #[error("mock has no `answer`")]
    MockWithoutAnswers,
    #[error("{request} is mocked twice")]
    MockedTwice { request: String },
    #[error("`per_page {name}` needs the paged step `{name}` right before it")]
    PerPageSource { name: String, why: String },
    #[error(
        "`{name}` pages once per `for_each` element, so its pages cannot be handed on one by one"
    )]
    PerPageOfForEach { name: String },
    #[error("`{name}` is read after the steps that run per page of `{paged}`")]
    PageReadLater { name: String, paged: String },
    #[error("`{name}` runs per page of `{outer}`, so its own pages cannot be handed on")]
    PerPageNested { name: String, outer: String },
    #[error("environment overrides unknown connection `{name}`")]
    UnknownEnvironmentConnection {
        name: String,
        suggestion: Option<String>,
    },

    #[error("{method} step `{step}` is retried without an idempotency key")]
    RetriedWithoutIdempotencyKey { method: &'static str, step: String },
    #[error("poll trigger has no `dedupe` key")]
    PollWithoutDedupe,
    #[error("connection `{name}` is never used")]
    UnusedConnection { name: String },
    #[error("integration `{name}` has no trigger")]
    NoTrigger { name: String },
    #[error("backoff is declared but `retry 1` never retries")]
    BackoffNeverUsed,
    #[error("fallback `{name}` is never used")]
    UnusedFallback { name: String },
    #[error("connection `{name}` declares no `auth`")]
    ConnectionWithoutAuth { name: String },
    #[error(
        "`{value}` looks like a path, but it goes into one path segment (its `/` is encoded as `%2F`)"
    )]
    PathLikeSegment { value: String },
    #[error(
        "`{value}` is printed without a default, but this spec treats `{tested}` as possibly missing"
    )]
    OptionalPrinted { value: String, tested: String },
    #[error("webhook trigger does not check a `signature`")]
    WebhookWithoutSignature,
    #[error("`paginate` has no `max_pages`")]
    PaginateWithoutMaxPages,
    #[error("this rule turns every `{status}` answer into a success")]
    RuleHidesFailures { status: String },
    #[error("`partial_data accept` on a mutation")]
    PartialMutationAccepted,
    #[error("unknown overlap policy `{name}`")]
    UnknownOverlapPolicy {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown missed-run policy `{name}`")]
    UnknownMissedPolicy {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`missed all` needs a window: how far back missed occurrences are made up")]
    MissedAllWithoutWindow,
    #[error("`{option}` applies to `missed all` only, not to `missed {policy}`")]
    MissedOptionUnused {
        option: &'static str,
        policy: String,
    },
    #[error("`missed all` makes up 1 to {most} occurrences, not {max}")]
    MadeUpOutOfRange { max: u32, most: u32 },
    #[error(
        "the window of `missed all` ({window}) is shorter than the time between two occurrences ({interval})"
    )]
    WindowShorterThanInterval { window: String, interval: String },
    #[error("`{cron}` fires at {time} in `{zone}`, a time daylight saving skips or repeats")]
    ScheduleInDaylightSavingChange {
        cron: String,
        zone: String,
        time: String,
    },
    #[error(
        "mock of a {method} request has a `where` on its body, but a {method} request sends none"
    )]
    BodyMatchWithoutBody { method: &'static str },
    #[error("step runs per page of `{name}` but does not read `${name}`")]
    PerPageUnread { name: String },
    #[error("incremental poll has no `dedupe` key")]
    IncrementalWithoutDedupe { lookback: bool },
    #[error("the `dedupe` key does not read the mark `{field}`")]
    DedupeIgnoresMark { field: String, read: String },
    #[error("the `dedupe` key reads the clock, so it differs on every delivery")]
    DedupeReadsClock,
    #[error("this `retry` rule never re-sends step `{step}` after a `5xx`")]
    RetryRuleOnUnsafeCall { step: String },
    #[error("no answer with status `{status}` ever reaches a rule")]
    RuleOnUnseenStatus { status: String },
    #[error("this alert repeats an earlier one: same condition, channel and target")]
    RepeatedAlert,
    #[error("`{value}` is not an e-mail address")]
    NotAnEmailAddress { value: String },
    #[error("an alert on `{condition}` fires while nothing happens")]
    AlertFiresWhenIdle { condition: String },
    #[error("an alert on `{condition}` never fires: counts are whole numbers from 0")]
    AlertNeverFires { condition: String },
}

impl DiagnosticKind {
    pub fn code(&self) -> Code {
        match self {
            Self::InternalError(_) => Code::InternalError,
            Self::Syntax { .. } => Code::Syntax,
            Self::InvalidEscape { .. } => Code::InvalidEscape,
            Self::DurationOverflow { .. } => Code::DurationOverflow,
            Self::NumberOutOfRange { .. } => Code::NumberOutOfRange,
            Self::NotUtf8 => Code::NotUtf8,
            Self::TooDeep { .. } => Code::TooDeep,
            Self::DuplicateName { .. } => Code::DuplicateName,
            Self::UnknownConnection { .. } => Code::UnknownConnection,
            Self::UnknownRoot { .. } => Code::UnknownRoot,
            Self::StepNotYetRun { .. } => Code::StepNotYetRun,
            Self::UnknownFallback { .. } => Code::UnknownFallback,
            Self::DuplicateSetting { .. } => Code::DuplicateSetting,
            Self::UnknownFunction { .. } => Code::UnknownFunction,
            Self::BadArguments { .. } => Code::BadArguments,
            Self::UnknownStep { .. } => Code::UnknownStep,
            Self::DuplicateField { .. } => Code::DuplicateField,
            Self::InvalidVariableName { .. } => Code::InvalidVariableName,
            Self::HeaderWithoutRequest => Code::HeaderWithoutRequest,
            Self::InvalidJsonPath { .. } => Code::InvalidJsonPath,
            Self::InvalidTemplate { .. } => Code::InvalidTemplate,
            Self::DuplicateTarget { .. } => Code::DuplicateTarget,
            Self::TargetConflict { .. } => Code::TargetConflict,
            Self::ListIndexTooLarge { .. } => Code::ListIndexTooLarge,
            Self::NotAPath { .. } => Code::NotAPath,
            Self::InvalidCron { .. } => Code::InvalidCron,
            Self::ChainedComparison => Code::ChainedComparison,
            Self::UnknownTemplateName { .. } => Code::UnknownTemplateName,
            Self::FilterArguments { .. } => Code::FilterArguments,
            Self::FilterArgument { .. } => Code::FilterArgument,
            Self::BadPercentage => Code::BadPercentage,
            Self::UnknownTimezone { .. } => Code::UnknownTimezone,
            Self::UnknownSignaturePreset { .. } => Code::UnknownSignaturePreset,
            Self::IntegrationNameClash { .. } => Code::IntegrationNameClash,
            Self::WebhookPathClash { .. } => Code::WebhookPathClash,
            Self::InvalidWebhookPath { .. } => Code::InvalidWebhookPath,
            Self::SignatureOptionUnused { .. } => Code::SignatureOptionUnused,
            Self::UnknownSignatureEncoding { .. } => Code::UnknownSignatureEncoding,
            Self::PollWithoutInterval => Code::PollWithoutInterval,
            Self::SignatureWithoutHeader => Code::SignatureWithoutHeader,
            Self::MissingBaseUrl { .. } => Code::MissingBaseUrl,
            Self::LiteralSecret { .. } => Code::LiteralSecret,
            Self::UnknownEncoding { .. } => Code::UnknownEncoding,
            Self::OAuth2Field { .. } => Code::OAuth2Field,
            Self::UnknownOverrideField { .. } => Code::UnknownOverrideField,
            Self::ZeroLimit { .. } => Code::ZeroLimit,
            Self::InvalidBaseUrl { .. } => Code::InvalidBaseUrl,
            Self::InvalidHeaderName { .. } => Code::InvalidHeaderName,
            Self::InvalidHeaderValue { .. } => Code::InvalidHeaderValue,
            Self::InvalidTokenUrl { .. } => Code::InvalidTokenUrl,
            Self::SecretInTemplate => Code::SecretInTemplate,
            Self::SecretHeader { .. } => Code::SecretHeader,
            Self::InvalidOverrideValue { .. } => Code::InvalidOverrideValue,
            Self::InvertedDelays { .. } => Code::InvertedDelays,
            Self::ZeroAttempts => Code::ZeroAttempts,
            Self::UnknownRetryCondition { .. } => Code::UnknownRetryCondition,
            Self::UnknownOnErrorAction { .. } => Code::UnknownOnErrorAction,
            Self::UnknownRetryAfterMode { .. } => Code::UnknownRetryAfterMode,
            Self::UnknownRuleAction { .. } => Code::UnknownRuleAction,
            Self::UnknownRulePreset { .. } => Code::UnknownRulePreset,
            Self::MisplacedRuleClause { .. } => Code::MisplacedRuleClause,
            Self::InvalidRuleStatus { .. } => Code::InvalidRuleStatus,
            Self::RuleNeverMatches => Code::RuleNeverMatches,
            Self::RetryRuleWithoutRetry { .. } => Code::RetryRuleWithoutRetry,
            Self::UnknownPartialDataPolicy { .. } => Code::UnknownPartialDataPolicy,
            Self::GraphqlDocument { .. } => Code::GraphqlDocument,
            Self::GraphqlOnly { .. } => Code::GraphqlOnly,
            Self::PaginationWithoutItems => Code::PaginationWithoutItems,
            Self::UnknownAlertMetric { .. } => Code::UnknownAlertMetric,
            Self::UnknownAlertChannel { .. } => Code::UnknownAlertChannel,
            Self::UnknownStepOutcome { .. } => Code::UnknownStepOutcome,
            Self::TestWithoutEvent => Code::TestWithoutEvent,
            Self::MockWithoutAnswers => Code::MockWithoutAnswers,
            Self::MockedTwice { .. } => Code::MockedTwice,
            Self::BodyMatchWithoutBody { .. } => Code::BodyMatchWithoutBody,
            Self::PerPageSource { .. } => Code::PerPageSource,
            Self::PerPageOfForEach { .. } => Code::PerPageOfForEach,
            Self::PageReadLater { .. } => Code::PageReadLater,
            Self::PerPageNested { .. } => Code::PerPageNested,
            Self::PerPageUnread { .. } => Code::PerPageUnread,
            Self::RetryRuleOnUnsafeCall { .. } => Code::RetryRuleOnUnsafeCall,
            Self::RuleOnUnseenStatus { .. } => Code::RuleOnUnseenStatus,
            Self::RepeatedAlert => Code::RepeatedAlert,
            Self::NotAnEmailAddress { .. } => Code::NotAnEmailAddress,
            Self::AlertFiresWhenIdle { .. } => Code::AlertFiresWhenIdle,
            Self::AlertNeverFires { .. } => Code::AlertNeverFires,
            Self::NeedsPaginate { .. } => Code::NeedsPaginate,
            Self::DotSegmentPath { .. } => Code::DotSegmentPath,
            Self::UnknownEnvironmentConnection { .. } => Code::UnknownEnvironmentConnection,
            Self::RetriedWithoutIdempotencyKey { .. } => Code::RetriedWithoutIdempotencyKey,
            Self::PollWithoutDedupe => Code::PollWithoutDedupe,
            Self::UnusedConnection { .. } => Code::UnusedConnection,
            Self::NoTrigger { .. } => Code::NoTrigger,
            Self::BackoffNeverUsed => Code::BackoffNeverUsed,
            Self::UnusedFallback { .. } => Code::UnusedFallback,
            Self::ConnectionWithoutAuth { .. } => Code::ConnectionWithoutAuth,
            Self::PathLikeSegment { .. } => Code::PathLikeSegment,
            Self::OptionalPrinted { .. } => Code::OptionalPrinted,
            Self::WebhookWithoutSignature => Code::WebhookWithoutSignature,
            Self::PaginateWithoutMaxPages => Code::PaginateWithoutMaxPages,
            Self::RuleHidesFailures { .. } => Code::RuleHidesFailures,
            Self::PartialMutationAccepted => Code::PartialMutationAccepted,
            Self::UnknownOverlapPolicy { .. } => Code::UnknownOverlapPolicy,
            Self::UnknownMissedPolicy { .. } => Code::UnknownMissedPolicy,
            Self::MissedAllWithoutWindow => Code::MissedAllWithoutWindow,
            Self::MissedOptionUnused { .. } => Code::MissedOptionUnused,
            Self::MadeUpOutOfRange { .. } => Code::MadeUpOutOfRange,
            Self::WindowShorterThanInterval { .. } => Code::WindowShorterThanInterval,
            Self::ScheduleInDaylightSavingChange { .. } => Code::ScheduleInDaylightSavingChange,
            Self::UnknownMarkType { .. } => Code::UnknownMarkType,
            Self::StartNotOfMarkType { .. } => Code::StartNotOfMarkType,
            Self::LookbackNotOfMarkType { .. } => Code::LookbackNotOfMarkType,
            Self::SinceNeverSent => Code::SinceNeverSent,
            Self::DedupeRetentionOutOfBounds { .. } => Code::DedupeRetentionOutOfBounds,
            Self::BodyWithoutMethod { .. } => Code::BodyWithoutMethod,
            Self::IncrementalWithoutDedupe { .. } => Code::IncrementalWithoutDedupe,
            Self::DedupeIgnoresMark { .. } => Code::DedupeIgnoresMark,
            Self::DedupeReadsClock => Code::DedupeReadsClock,
        }
    }

    /// Advice rather than a warning of a likely mistake: held back while the spec has
    /// errors, so that a broken spec's report shows what must be fixed first.
    pub fn is_advice(&self) -> bool {
        matches!(self, Self::ConnectionWithoutAuth { .. })
    }

    pub fn severity(&self) -> Severity {
        self.code().severity()
    }

    /// The text under the span.
    pub fn label(&self) -> String {
        match self {
            Self::Syntax { expected, .. } => format!("expected {expected}"),
            Self::DuplicateName { .. } => "declared again here".into(),
            Self::StepNotYetRun { is_self: true, .. } => "a step cannot read its own result".into(),
            Self::StepNotYetRun { .. } => "this step runs later".into(),
            Self::DuplicateSetting { .. } | Self::DuplicateField { .. } => "set again here".into(),
            Self::DuplicateTarget { .. } => "assigned again here".into(),
            Self::LiteralSecret { .. } => "a credential in plain text".into(),
            Self::RetriedWithoutIdempotencyKey { .. } => "retried here".into(),
            Self::MockedTwice { .. } => "mocked again here".into(),
            Self::RepeatedAlert => "again here".into(),
            Self::PerPageSource { why, .. } => why.clone(),
            Self::WebhookPathClash { .. } | Self::IntegrationNameClash { .. } => "clashes".into(),
            _ => "here".into(),
        }
    }

    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        if let Some(suggestion) = self.suggestion() {
            return Some(format!("did you mean `{suggestion}`?"));
        }
        Some(match self {
            Self::InternalError(_) => "this is a bug in integ; please report it with the spec".into(),
            Self::Syntax { hint, .. } => return hint.clone(),
            Self::InvalidEscape { escape } if escape == "\\u" => {
                "unicode escapes are written with braces: `\\u{e9}`".into()
            }
            Self::InvalidEscape { .. } => {
                r#"the escapes are \" \\ \n \r \t \/ and \u{XXXX}"#.into()
            }
            Self::DurationOverflow { .. } => "durations go up to 49 710 days".into(),
            Self::NumberOutOfRange { range, .. } => format!("use a number from {range}"),
            Self::NotUtf8 => "save the spec as UTF-8 text".into(),
            Self::TooDeep { .. } => "flatten the value, or read it from a file with `file(\"...\")`".into(),
            Self::DuplicateName { what, .. } => format!("give each {what} its own name"),
            Self::UnknownConnection { .. } => "declare it with `connection NAME { base_url ... }`".into(),
            Self::UnknownRoot { reason: Some(reason), .. } => (*reason).into(),
            Self::UnknownRoot { name, known, .. } => {
                let reads = if name.starts_with('$') {
                    "`$` alone reads the event"
                } else {
                    "templates read `event`, earlier steps by name, and `item` in `for_each` steps"
                };
                match known.as_slice() {
                    [] => format!("{reads}; no step has run before this point"),
                    known => format!("{reads}; known here: {}", join_ticked(known)),
                }
            }
            Self::StepNotYetRun { .. } => "only the results of earlier steps can be read".into(),
            Self::UnknownFallback { .. } => "declare it with `fallback NAME = CONNECTION METHOD \"path\"`".into(),
            Self::DuplicateSetting { .. } | Self::DuplicateField { .. } => "remove one of them".into(),
            Self::UnknownFunction { .. } => "the functions are `secret`, `env`, `file` and `header`".into(),
            Self::HeaderWithoutRequest => "headers are read in a webhook trigger's `when` and `dedupe`; polls, schedules and steps read the event (`$`)".into(),
            Self::SecretHeader { .. } => "the trigger's `signature` checks the request; `when` and `dedupe` may read its other headers, such as `X-GitHub-Event` or `X-GitHub-Delivery`".into(),
            Self::BadArguments { example, .. } => format!("for example `{example}`"),
            Self::InvalidVariableName { .. } => "name it as environment variables are named: letters, digits and `_`, such as `HUBSPOT_TOKEN`".into(),
            Self::UnknownStep { .. } => "name a step declared with `step NAME = ...`".into(),
            Self::InvalidJsonPath { .. } => "JSONPath follows RFC 9535, for example `$.items[0].id` or `$.items[?@.price > 10]`".into(),
            Self::InvalidTemplate { .. } => "templates use minijinja syntax: `{{ event.id }}`, `{{ contact.name | upper }}`".into(),
            Self::DuplicateTarget { .. } => "each body field is assigned once".into(),
            Self::TargetConflict { .. } => "a field is either a value or an object or list of further fields".into(),
            Self::ListIndexTooLarge { .. } => "`[n]` fills the list with nulls up to `n`; to send a list, assign it whole: `items = $.items`".into(),
            Self::NotAPath { .. } => "write a JSONPath such as `$.items[*]`".into(),
            Self::ChainedComparison => "`a < b < c` compares `a < b` (true or false) with `c`; write `a < b and b < c`".into(),
            Self::UnknownTemplateName { what, .. } => format!("minijinja's {what}s are listed at https://docs.rs/minijinja/latest/minijinja/{what}s/"),
            Self::FilterArguments { example, .. } => format!("for example `{example}`"),
            Self::FilterArgument { .. } => "see the filter in docs/language.md, Templates".into(),
            Self::BadPercentage => "for example `ratio 50% over 1m`".into(),
            Self::InvalidCron { .. } => "cron takes 5 fields (minute hour day month weekday), or 6 with seconds first: `0 9 * * MON-FRI`".into(),
            Self::UnknownTimezone { .. } => "use an IANA time zone name such as `Europe/Paris` or `UTC`".into(),
            Self::UnknownSignaturePreset { .. } => format!("the presets are {}", join_ticked(SIGNATURE_PRESETS)),
            Self::IntegrationNameClash { .. } => "rename one: an integration's inbox, dedupe keys, cursors and run history are kept under its name".into(),
            Self::WebhookPathClash { .. } => "give each webhook trigger its own path".into(),
            Self::InvalidWebhookPath { .. } => "write the path as it follows the host: `/hooks/stripe`".into(),
            Self::SignatureOptionUnused { .. } => "only the `hmac_sha256` preset takes `header`, `encoding` and `prefix`".into(),
            Self::UnknownSignatureEncoding { .. } => "the encodings are `hex` and `base64`".into(),
            Self::PollWithoutInterval => "add `every 5m` (or another duration) to the block".into(),
            Self::SignatureWithoutHeader => "add `{ header \"X-Signature\" }` with the provider's header name".into(),
            Self::MissingBaseUrl { .. } => "add `base_url \"https://api.example.com\"`".into(),
            Self::LiteralSecret { .. } => "read it at run time with `secret(\"NAME\")`: secrets come from the environment or a secrets file, never from the spec".into(),
            Self::UnknownEncoding { .. } => "the encodings are `json` and `form`".into(),
            Self::OAuth2Field { .. } => "oauth2 takes `token_url`, `client_id`, `client_secret`, and optionally `refresh_token`, `scopes`, `audience`".into(),
            Self::UnknownOverrideField { .. } => "an environment overrides connection fields such as `base_url`, `auth`, `rate_limit`, `timeout`".into(),
            Self::ZeroLimit { what } if ["window", "timeout", "interval", "tolerance"].iter().any(|w| what.contains(w)) => "use a duration of at least `1ms`".into(),
            Self::ZeroLimit { .. } => "use a positive whole number".into(),
            Self::InvalidOverrideValue { field } => format!("write it as in a connection, for example `{}`", override_example(field)),
            Self::InvalidHeaderName { .. } => "header names are letters, digits and `-` (no space, colon or quote), such as `X-Request-Id`".into(),
            Self::InvalidHeaderValue { .. } => "a header value is one line: no line break or other control character".into(),
            Self::InvalidTokenUrl { .. } => "write the token endpoint with its scheme: `https://auth.example.com/oauth/token`".into(),
            Self::SecretInTemplate => "a filter could print or transform it past redaction; write the secret as the whole value, with its text around it: `secret(\"API_TOKEN\", \"Token {}\")`".into(),
            Self::InvalidBaseUrl { .. } => "write it with its scheme and without `?...`: `https://api.example.com/v1`; put query parameters in the steps' `query { }`".into(),
            Self::InvertedDelays { .. } => "write the range as `initial..max`, the smaller first".into(),
            Self::ZeroAttempts => "`retry 1` makes one attempt and never retries".into(),
            Self::UnknownRetryCondition { .. } => "retry on status codes (`429`), classes (`5xx`), `timeout` or `network`".into(),
            Self::UnknownOnErrorAction { name, .. } if name == "fallback" => "name the step to run instead: `on_error fallback NAME`".into(),
            Self::UnknownOnErrorAction { .. } => "the actions are `dead_letter`, `skip`, `fail` and `fallback NAME`".into(),
            Self::UnknownRetryAfterMode { .. } => "write `retry_after honor` (the default) or `retry_after ignore`".into(),
            Self::UnknownRuleAction { .. } => format!("the actions are {}", join_ticked(RULE_ACTIONS)),
            Self::UnknownRulePreset { .. } => format!("the presets are {}; or write the rules out: `rules {{ when $.ok == false fail }}`", join_ticked(RULE_PRESETS)),
            Self::MisplacedRuleClause { clause, .. } if clause.starts_with("`after`") => "only a `retry` rule waits: `retry after header \"Retry-After\"`".into(),
            Self::MisplacedRuleClause { .. } => "only `fail` and `retry` rules carry a message".into(),
            Self::InvalidRuleStatus { .. } => "write a status from `100` to `599`, or a class from `1xx` to `5xx`".into(),
            Self::RuleNeverMatches => "move it before the earlier rule, or give the earlier rule a `when`".into(),
            Self::RetryRuleWithoutRetry { .. } => "give the step more attempts (`retry 3`), or make the rule `fail`".into(),
            Self::UnknownPartialDataPolicy { .. } => "write `partial_data fail` (the default) or `partial_data accept`".into(),
            Self::GraphqlDocument { .. } => "add `document \"\"\"query { ... }\"\"\"`".into(),
            Self::GraphqlOnly { .. } => "declare the step as `CONNECTION graphql \"/graphql\"`".into(),
            Self::PaginationWithoutItems => "add `items $.results[*]` (the JSONPath of the records in a page)".into(),
            Self::UnknownAlertMetric { .. } => format!("the metrics are {}", join_ticked(ALERT_METRICS)),
            Self::UnknownAlertChannel { .. } => format!("the channels are {}", join_ticked(ALERT_CHANNELS)),
            Self::UnknownStepOutcome { .. } => format!("the outcomes are {}", join_ticked(STEP_OUTCOMES)),
            Self::DotSegmentPath { .. } => "the engine refuses a path that would leave the base URL's path; write the path it means: `/admin`, not `/contacts/../admin`".into(),
            Self::NeedsPaginate { .. } => "add `paginate ...` to the step, or remove this setting".into(),
            Self::TestWithoutEvent => "add `event { ... }` or `event file(\"fixtures/event.json\")`".into(),
            Self::MockWithoutAnswers => "add `answer STATUS [BODY]` lines, given in turn to the requests the mock matches".into(),
            Self::MockedTwice { .. } => "for answers in turn (a 429, then a 200), write one mock with `answer` lines; for different requests, tell them apart with a query (`\"/orders?page=2\"`) or `where`".into(),
            Self::PerPageSource { .. } => "put the steps that handle each page right after the step that pages, each with `per_page NAME`".into(),
            Self::PerPageOfForEach { .. } => "page one listing: move the `for_each` to the steps that run per page".into(),
            Self::PageReadLater { paged, .. } => format!("a page, and what its `per_page` steps return for it, is dropped once they ran (memory holds one page); read it in a step with `per_page {paged}`, or remove `per_page` to collect every page"),
            Self::PerPageNested { .. } => "hand on the pages of one step; the steps that run per page may page what they fetch, and collect it".into(),
            Self::RetryRuleOnUnsafeCall { .. } => "a `5xx` may come after the API did the work, so it is retried only on calls safe to send again: give the step an `idempotency_key` the API honours, or let the rule look at `429` only".into(),
            Self::RuleOnUnseenStatus { .. } => "a `1xx` is never the final answer, and redirects (`301`, `302`, `303`, `307`, `308`) are followed before the rules read where they lead; name the status that arrives (a `304` does)".into(),
            Self::PerPageUnread { name } => format!("read the page (`body {{ records = ${name} }}`, `for_each ${name}[*]`), or remove `per_page`"),
            Self::RepeatedAlert => "the two would share one state and send every message twice: remove one".into(),
            Self::NotAnEmailAddress { .. } => "write an address such as `ops@example.com` or `Ops <ops@example.com>`; the SMTP server is the secret `INTEG_SMTP_URL`".into(),
            Self::AlertFiresWhenIdle { .. } => "a count of 0 meets it, so the alert fires at start and stays firing while all is well; alert on trouble (`> 0`, `>= 5`)".into(),
            Self::AlertNeverFires { .. } => "write a threshold some count can meet (`> 0`, `>= 5`)".into(),
            Self::BodyMatchWithoutBody { .. } => "match on the query instead (`\"/orders?page=2\"`), or remove the `where`".into(),
            Self::UnknownEnvironmentConnection { .. } => "an environment overrides fields of connections declared in this spec".into(),
            Self::RetriedWithoutIdempotencyKey { .. } => "add `idempotency_key \"...\"` so a retry cannot create a duplicate, or `retry 1` to not retry".into(),
            Self::PollWithoutDedupe => "add `dedupe $.id` so an item seen twice runs once".into(),
            Self::UnusedConnection { .. } => "remove it, or use it in a step or trigger".into(),
            Self::NoTrigger { .. } => "add a trigger (`trigger webhook \"/path\"`, `trigger poll`, `trigger schedule`, `trigger manual`)".into(),
            Self::BackoffNeverUsed => "raise the attempts, such as `retry 5 ...`".into(),
            Self::UnusedFallback { .. } => "name it in a step's `on_error fallback NAME`, or remove it".into(),
            Self::ConnectionWithoutAuth { .. } => "add its credentials (`auth bearer secret(\"TOKEN\")`, ...), or `auth none` if the API takes none".into(),
            Self::PathLikeSegment { value } => format!(
                "to insert its segments, write `{{{{ {value} | segments }}}}` (each encoded, no `.` or `..`); to keep it as one segment, `{{{{ {value} | string }}}}`"
            ),
            Self::OptionalPrinted { value, .. } => format!(
                "printing a missing or null value fails the step: write `{{{{ {value} | default(\"...\") }}}}`, or print it inside `{{% if ... %}}`"
            ),
            Self::WebhookWithoutSignature => "anyone who finds the URL can start runs: add the provider's `signature PRESET secret(\"...\")`, or `signature none` if it is unsigned on purpose".into(),
            Self::RuleHidesFailures { .. } => "narrow it with `when` to the answers that mean it (`404 when $.code == \"not_found\" empty`): as it is, a wrong URL, an expired token or an outage succeed silently".into(),
            Self::PartialMutationAccepted => "a mutation's errors mean some of its writes failed; leave `partial_data fail` (the default) so that the event is kept".into(),
            Self::UnknownMarkType { .. } => "the mark types are `rfc3339`, `epoch_s`, `epoch_ms` and `integer`; a time is sent as a time type, an integer as an integer".into(),
            Self::StartNotOfMarkType { .. } => "write the first round's mark as the API writes the field: `\"2026-12-01T00:00:00Z\"` for `rfc3339`, `1796083200` for `epoch_s`, `1796083200000` for `epoch_ms`, `42` for `integer`".into(),
            Self::LookbackNotOfMarkType { .. } => "a time mark looks back a duration (`lookback 10m`), an integer mark a count (`lookback 100`)".into(),
            Self::SinceNeverSent => "send it in the query or the body, such as `query { updated_since = \"{{ since }}\" }`: without it every round reads everything again".into(),
            Self::DedupeRetentionOutOfBounds { .. } => "keep the keys at least as long as the poll's interval and look-back (an item seen again must still find its key) and at most a year".into(),
            Self::BodyWithoutMethod { .. } => "declare the method that sends a body, such as `trigger poll crm POST \"/search\"`".into(),
            Self::IncrementalWithoutDedupe { lookback: true } => "add `dedupe` with the item's id and mark: the look-back and the mark's own bound ask again for items already delivered".into(),
            Self::IncrementalWithoutDedupe { lookback: false } => "add `dedupe` with the item's id and mark: each round asks again for the items at the mark itself".into(),
            Self::DedupeIgnoresMark { read, .. } => format!("key on the id and the mark, such as `dedupe \"{{{{ event.id }}}}@{{{{ {read} }}}}\"`: with the id alone, a record changed again is dropped as a duplicate"),
            Self::PaginateWithoutMaxPages => "add `max_pages N`, the most pages this step should ever need: an API that never stops is cut there, not after 1000 pages".into(),
            Self::UnknownOverlapPolicy { .. } => format!("the overlap policies are {}", join_ticked(OVERLAP_POLICIES)),
            Self::UnknownMissedPolicy { .. } => format!("the missed-run policies are {}", join_ticked(MISSED_POLICIES)),
            Self::MissedAllWithoutWindow => "say how far back to look and, if 10 is not the right cap, how many at most: `missed all within 7d max 10`".into(),
            Self::MissedOptionUnused { .. } => "remove it, or make up every missed occurrence in a window: `missed all within 7d max 10`".into(),
            Self::MadeUpOutOfRange { most, .. } => format!("a schedule down for a long while would start that many runs at once; use a number from 1 to {most}"),
            Self::ScheduleInDaylightSavingChange { .. } => "the day the clocks go forward it runs when the gap ends; the day they go back it runs once, at the first of the two; pick a time outside the change if the hour matters".into(),
            Self::WindowShorterThanInterval { .. } => "such a window holds one occurrence at most: write `missed latest`, or widen the window to the days you want made up".into(),
            Self::DedupeReadsClock => "dedupe on what the sender keeps the same across deliveries: the event's id (`$.id`), or a delivery header (`header(\"X-GitHub-Delivery\")`)".into(),
        })
    }

    fn suggestion(&self) -> Option<&str> {
        match self {
            Self::UnknownConnection { suggestion, .. }
            | Self::UnknownRoot { suggestion, .. }
            | Self::UnknownFallback { suggestion, .. }
            | Self::UnknownFunction { suggestion, .. }
            | Self::UnknownStep { suggestion, .. }
            | Self::UnknownTimezone { suggestion, .. }
            | Self::UnknownTemplateName { suggestion, .. }
            | Self::UnknownSignaturePreset { suggestion, .. }
            | Self::UnknownEncoding { suggestion, .. }
            | Self::OAuth2Field { suggestion, .. }
            | Self::UnknownOverrideField { suggestion, .. }
            | Self::UnknownRetryCondition { suggestion, .. }
            | Self::UnknownOnErrorAction { suggestion, .. }
            | Self::UnknownRuleAction { suggestion, .. }
            | Self::UnknownRulePreset { suggestion, .. }
            | Self::UnknownAlertMetric { suggestion, .. }
            | Self::UnknownAlertChannel { suggestion, .. }
            | Self::UnknownStepOutcome { suggestion, .. }
            | Self::UnknownEnvironmentConnection { suggestion, .. }
            | Self::UnknownOverlapPolicy { suggestion, .. }
            | Self::UnknownMissedPolicy { suggestion, .. }
            | Self::UnknownMarkType { suggestion, .. } => suggestion.as_deref(),
            _ => None,
        }
    }
}

/// Words the checker accepts, shared with the help texts above.
pub const RULE_ACTIONS: &[&str] = &["succeed", "empty", "fail", "retry"];

/// The named presets of response rules (`rules slack`), as `check::rule_presets` defines them.
pub const RULE_PRESETS: &[&str] = &["shopify", "slack"];
pub const SIGNATURE_PRESETS: &[&str] =
    &["hmac_sha256", "stripe", "github", "hubspot_v3", "shopify"];
pub const OVERLAP_POLICIES: &[&str] = &["skip", "queue", "allow"];
pub const MISSED_POLICIES: &[&str] = &["skip", "latest", "all"];
pub const ALERT_METRICS: &[&str] = &["dead_letters", "failed_runs", "retries", "rate_limited"];
pub const ALERT_CHANNELS: &[&str] = &["slack", "webhook", "email"];
pub const STEP_OUTCOMES: &[&str] = &[
    "succeeded",
    "skipped",
    "failed",
    "dead_lettered",
    "fell_back",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

fn override_example(field: &str) -> &'static str {
    match field {
        "base_url" => "hubspot.base_url \"http://localhost:4010\"",
        "rate_limit" => "hubspot.rate_limit 10 per 1s",
        "timeout" | "connect_timeout" => "hubspot.timeout 30s",
        "auth" => "hubspot.auth bearer secret(\"STAGING_TOKEN\")",
        "max_concurrency" => "hubspot.max_concurrency 2",
        "encoding" => "hubspot.encoding form",
        _ => "hubspot.headers { \"X-Env\" = \"staging\" }",
    }
}

fn join_ticked<S: AsRef<str>>(words: &[S]) -> String {
    let ticked: Vec<String> = words.iter().map(|w| format!("`{}`", w.as_ref())).collect();
    ticked.join(", ")
}
