# frozen_string_literal: true

require "json"

module Gantry
  # Acks the jobs a Worker finishes, sending those that finish together in one `ack` with `ids` (one request
  # and one commit on the broker). One thread of its own sends them: a job that finishes while no ack is in
  # flight is acked at once, alone (the `id` form, so an idle worker adds no latency); jobs that finish while
  # an ack is in flight wait for it and go together in the next one. Each caller of #ack hears only of its own
  # job, as if it had acked alone.
  #
  # A broker older than the `ids` form refuses it (-32602, field "ids"): from then on every job is acked alone,
  # from its caller's thread, as before batching.
  class AckBatcher
    MAX_IDS = 10_000 # the broker's limit for one ack
    # A batch carries at most this much result JSON, keeping its line well under the broker's 1 MiB limit (a
    # longer line closes the connection, and every lease on it); results past it go in the next batch.
    RESULTS_BUDGET = 256 * 1024

    Pending = Struct.new(:id, :result, :result_bytes, :outcome)
    private_constant :Pending

    def initialize(client, logger: nil)
      @client = client
      @logger = logger
      @waiting = Thread::Queue.new
      @one_by_one = false
      @closed = false
      @thread = Thread.new { send_loop }
      @thread.name = "gantry-acks"
      @thread.report_on_exception = false
    end

    # Acks the job (a Gantry::Job or an id) with its result; returns nil once the broker has. Raises what a
    # lone `ack` would: Gantry::LeaseLost (also for a job the broker answered in `lost`), another Gantry::Error
    # when the ack failed or its outcome is unknown, JSON::GeneratorError (nothing sent) when the result is not
    # JSON.
    def ack(job, result = nil)
      id = job.is_a?(Job) ? job.id : job.to_s
      if @one_by_one
        @client.ack(id, result)
        return nil
      end

      # Measured here, in the caller's thread, so a result that is not JSON fails its own job, not a batch.
      result_bytes = result.nil? ? 0 : JSON.generate(result).bytesize
      pending = Pending.new(id, result, result_bytes, Thread::Queue.new)
      begin
        @waiting << pending
      rescue ClosedQueueError
        raise ConnectionError, "the worker stopped before job #{id} was acked"
      end
      outcome = pending.outcome.pop
      raise outcome if outcome

      nil
    end

    # Sends nothing more: callers still waiting get a ConnectionError (the broker puts their jobs back when
    # their leases end or the connection closes).
    def close
      @closed = true
      @waiting.close
      nil
    end

    private

    def send_loop
      carried = nil
      while (first = carried || @waiting.pop)
        batch, carried = take_batch(first)
        if @closed
          fail_all(batch, ConnectionError.new("the worker stopped before the ack was sent"))
        elsif batch.size == 1 || @one_by_one
          batch.each { |pending| send_alone(pending) }
        else
          send_together(batch)
        end
      end
    end

    # `first` and whatever else is waiting, within the limits; returns [batch, the first of the next one or nil].
    def take_batch(first)
      batch = [first]
      bytes = first.result_bytes
      until @waiting.empty? || batch.size == MAX_IDS
        pending = @waiting.pop # this thread alone pops, so it is there
        return [batch, pending] if bytes + pending.result_bytes > RESULTS_BUDGET

        bytes += pending.result_bytes
        batch << pending
      end
      [batch, nil]
    end

    def send_alone(pending)
      @client.ack(pending.id, pending.result)
      pending.outcome << nil
    rescue StandardError => e
      pending.outcome << e
    end

    def send_together(batch)
      results = batch.reject { |pending| pending.result.nil? }.to_h { |pending| [pending.id, pending.result] }
      answer = @client.ack_many(batch.map(&:id), results: results.empty? ? nil : results)
      lost = (answer["lost"] || []).to_h { |entry| [entry["id"], entry] }
      batch.each { |pending| pending.outcome << (lost[pending.id] && lease_lost(lost[pending.id])) }
    rescue StandardError => e
      if e.is_a?(InvalidParams) && e.field == "ids" # a broker older than the ids form
        @logger&.info("the broker does not take ack with ids (it is older): acking jobs one by one from now on")
        @one_by_one = true
        batch.each { |pending| send_alone(pending) }
      else
        fail_all(batch, e)
      end
    end

    def fail_all(batch, error)
      batch.each { |pending| pending.outcome << error }
    end

    # What a lone ack of the job would have raised: the answer's `lost` holds the jobs this connection no
    # longer holds the lease on.
    def lease_lost(entry)
      state = entry["state"] ? "it is now #{entry["state"]}" : "no such job"
      RPCError.from({ "code" => -32_003, "data" => entry,
                      "message" => "This connection does not hold the lease on job #{entry["id"]} (#{state}): " \
                                   "it was not acked. Do not ack or nack it again." })
    end
  end
end
