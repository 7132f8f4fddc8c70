# frozen_string_literal: true

require "active_job"
require "gantry" unless defined?(Gantry::Client)

module Gantry
  # Performs a job enqueued by ActiveJob::QueueAdapters::GantryAdapter (type "active_job", args the job's
  # serialization) with ActiveJob::Base.execute, so callbacks, retry_on and discard_on work as with any
  # backend. An exception ActiveJob does not handle fails the Gantry job (retried with Gantry's backoff).
  class ActiveJobHandler
    def call(args, job)
      ::ActiveJob::Base.execute(args.merge("provider_job_id" => job.id))
      nil
    end
  end

  # A Gantry::Worker that runs ActiveJob jobs (and any other handlers given):
  #
  #   require_relative "config/environment"      # boot the Rails app, so job classes load
  #   Gantry::ActiveJobWorker.new(queues: %w[default mailers], concurrency: 5).run
  class ActiveJobWorker < Worker
    def initialize(queues: ["default"], handlers: {}, name: "gantry-ruby-activejob", **options)
      super(queues: queues, handlers: { ActiveJob::QueueAdapters::GantryAdapter::JOB_TYPE => ActiveJobHandler.new }
                                        .merge(handlers), name: name, **options)
    end
  end
end
