# frozen_string_literal: true

module Gantry
  # The base of every error this library raises.
  class Error < StandardError; end

  # The connection to the broker could not be made, or it dropped while a request was waiting for its answer
  # (the outcome of that request is unknown). The next call reconnects.
  class ConnectionError < Error; end

  # The TLS connection to a gantrys:// broker could not be made safe: its certificate is not trusted or not for
  # the host, it wants a client certificate, or it does not speak TLS there. The message says what to change
  # (ca_file:, cert_file:/key_file:, the URL); trying again as is will not help.
  class TLSError < ConnectionError; end

  # No answer came within the timeout given to a call.
  class TimeoutError < Error; end

  # Marks an error that retrying cannot mend: a Worker nacks its job with retry: false. PermanentError has it; any
  # other error may be marked too (error.extend(Gantry::Permanent)), keeping its class and message for the
  # job's record.
  module Permanent; end

  # Raise it from a handler when retrying cannot help (bad args, say): the job goes straight to the dead set.
  class PermanentError < Error
    include Permanent
  end

  # Raised inside a running handler when the worker is told to stop (its job has been handed back).
  class WorkerStopped < Exception; end # rubocop:disable Lint/InheritException -- like Interrupt: not a job failure

  # A JSON-RPC error answered by the broker. `code`, `name` (from the protocol's error table), `message` (for
  # people: it says what to do) and `data` (for programs; `field` names the offending param).
  class RPCError < Error
    # proto-json/errors.json: code => [name, retryable]
    CODES = {
      -32700 => ["parse_error", false],
      -32600 => ["invalid_request", false],
      -32601 => ["method_not_found", false],
      -32602 => ["invalid_params", false],
      -32603 => ["internal_error", false],
      -32001 => ["unauthorized", false],
      -32002 => ["not_found", false],
      -32003 => ["lease_lost", false],
      -32004 => ["storage_unavailable", true],
      -32005 => ["overloaded", true],
      -32006 => ["payload_too_large", false],
      -32007 => ["shutting_down", true],
      -32008 => ["wrong_state", false],
      -32009 => ["forbidden", false],
    }.freeze

    attr_reader :code, :data

    # Builds the error (an instance of the subclass for its code, e.g. Gantry::LeaseLost) from a response's
    # `error` member.
    def self.from(error)
      error = {} unless error.is_a?(Hash)
      klass = SUBCLASSES.fetch(error["code"], RPCError)
      klass.new(error["code"], error["message"], error["data"])
    end

    def initialize(code, message, data = nil)
      @code = code
      @data = data
      super(message.to_s)
    end

    def name
      CODES.dig(code, 0) || "unknown_error"
    end

    # The param the broker refused (`data.field`), if any.
    def field
      data["field"] if data.is_a?(Hash)
    end

    # Whether the same request may succeed if sent again later.
    def retryable?
      CODES.dig(code, 1) || false
    end

    def inspect
      "#<#{self.class} #{code} #{name}: #{message}#{" data=#{data.inspect}" if data}>"
    end
  end

  SUBCLASSES = RPCError::CODES.to_h do |code, (name, _)|
    klass = Class.new(RPCError)
    const_set(name.split("_").map(&:capitalize).join, klass) # Gantry::LeaseLost, Gantry::InvalidParams, ...
    [code, klass]
  end.freeze
  private_constant :SUBCLASSES
end
