# frozen_string_literal: true

require_relative "support"

unless ENV["GANTRY_URL"].to_s.strip != ""
  abort "GANTRY_URL is not set: these tests need a live broker. Run them with\n  " \
        "python3 ../../scripts/with_broker.py -- ruby bin/test   (from clients/ruby)"
end
