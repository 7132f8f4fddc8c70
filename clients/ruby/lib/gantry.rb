# frozen_string_literal: true

require_relative "gantry/version"
require_relative "gantry/errors"
require_relative "gantry/hooks"
require_relative "gantry/tracing"
require_relative "gantry/job"
require_relative "gantry/operation"
require_relative "gantry/tls"
require_relative "gantry/connection"
require_relative "gantry/client"
require_relative "gantry/ack_batcher"
require_relative "gantry/worker"
require_relative "gantry/asynchronous"

# Ruby client for Gantry, a job broker speaking newline-delimited JSON-RPC 2.0 over TCP
# (gantry://) or TLS (gantrys://).
#
#   Gantry::Client  - enqueue and manage jobs (one pipelined, thread-safe connection)
#   Gantry::Worker  - run handlers for jobs
#   Gantry::Hooks - hooks at each stage of a job's life (Gantry.on, Client#on, Worker#on)
#   Gantry::Tracing - W3C traceparent in a job's meta, from OpenTelemetry when loaded or a provider of your own
#   Gantry::Operation and Gantry::StepResult - operations: steps that share globals and may jump between branches
#   (packages, configurable operations run by hand, cron or events: Client#upsert_package, #run_package, Job#package)
#   Gantry::Asynchronous - `perform_asynchronously :method`: a record's method run later by a worker
#   Gantry::ActiveJobWorker and ActiveJob::QueueAdapters::GantryAdapter - ActiveJob on Gantry
module Gantry
  autoload :ActiveJobWorker, "gantry/active_job_worker"
  autoload :ActiveJobHandler, "gantry/active_job_worker"
end

# With ActiveJob already loaded (a Rails app requires it before its gems), make `queue_adapter = :gantry` work.
require "active_job/queue_adapters/gantry_adapter" if defined?(::ActiveJob::QueueAdapters)
